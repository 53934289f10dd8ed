"""jobrunner.testing ships (the demo subcommand needs it) but is test
support: no runtime module of jobrunner imports it."""

import pkgutil
import subprocess
import sys

import jobrunner


def test_runtime_modules_never_import_the_testing_package():
    modules = [m.name for m in pkgutil.walk_packages(jobrunner.__path__, "jobrunner.")
               if m.name != "jobrunner.__main__" and not m.name.startswith("jobrunner.testing")]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "bad = sorted(m for m in sys.modules if m.startswith('jobrunner.testing'))\n"
            "assert not bad, bad\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "jobrunner.loop" in modules and "jobrunner.cli" in modules
