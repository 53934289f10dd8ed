"""OCA's mandatory pylint-odoo checks pass on the addon."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_pylint_odoo_mandatory_checks_are_clean():
    res = subprocess.run([sys.executable, "-m", "pylint", "--rcfile", str(ROOT / ".pylintrc-mandatory"),
                          str(ROOT / "queue_job_skiplocked")], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
