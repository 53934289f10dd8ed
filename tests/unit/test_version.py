"""One version for the distribution, the addon and the runner, accepted by
every supported series' module loader."""

import ast
import pathlib
import re
import subprocess
import sys

import jobrunner

ROOT = pathlib.Path(__file__).resolve().parents[2]
MANIFEST = ast.literal_eval((ROOT / "queue_job_skiplocked" / "__manifest__.py").read_text())
SERIES = ("17.0", "18.0", "19.0")


def test_runner_and_distribution_carry_the_manifest_version():
    assert jobrunner.__version__ == MANIFEST["version"]
    res = subprocess.run([sys.executable, "setup.py", "--version"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, check=True)
    assert res.stdout.strip().splitlines()[-1] == MANIFEST["version"]


def test_every_series_loader_accepts_the_manifest_version():
    # what adapt_version/check_version of Odoo 17.0, 18.0 and 19.0 accept and
    # turn into "<series>.x.y.z": x.y or x.y.z without a series prefix
    version = MANIFEST["version"]
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", version), version
    assert not version.startswith(SERIES)
