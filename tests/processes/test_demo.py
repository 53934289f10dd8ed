"""README command 1: the demo runs from nothing and reports no duplicates."""

import subprocess
import sys


def test_demo_runs_and_reports_zero_duplicates():
    res = subprocess.run([sys.executable, "-m", "jobrunner", "demo", "--jobs", "1500"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout
    assert "duplicates: 0" in out and "final states: done 1600" in out
    assert "jobs per runner: runner 1:" in out and out.rstrip().endswith("OK")
