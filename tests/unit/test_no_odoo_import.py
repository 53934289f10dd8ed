"""The core must run where Odoo is not installed: it never imports odoo."""

import pkgutil
import subprocess
import sys

import jobrunner


def test_jobrunner_never_imports_odoo():
    modules = [m.name for m in pkgutil.walk_packages(jobrunner.__path__, "jobrunner.")
               if m.name != "jobrunner.__main__"]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "bad = sorted(m for m in sys.modules if m == 'odoo' or m.startswith('odoo.'))\n"
            "assert not bad, bad\n"
            "print(len(sys.modules))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert len(modules) >= 8
