"""queue-job-runner status against the table itself (no runner running);
tests/processes/test_status.py checks it against live runners."""

import json
import subprocess
import sys

from jobrunner import schema
from jobrunner.testing.fixtures import db_args, status


def test_status_shows_pending_age_and_global_limits(qdb, pg_cluster):
    import os

    qdb.insert_jobs(3, channel="root.seq")
    qdb.execute("UPDATE queue_job SET date_created = now() AT TIME ZONE 'utc' - interval '10 minutes'")
    res = subprocess.run([sys.executable, "-m", "jobrunner", "status", "--json", *db_args(pg_cluster),
                          "--database", qdb.name], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, ODOO_QUEUE_JOB_CHANNELS="root:2,root.seq:1:sequential"))
    assert res.returncode == 0, res.stderr
    [report] = json.loads(res.stdout)
    [ch] = report["channels"]
    assert ch["states"] == {"pending": 3} and 590 < ch["oldest_pending_s"] < 700
    assert ch["global_limit"] == "sequential" and report["limits"] == {"root.seq": "sequential"}
    assert report["runners"] == [] and report["capacity"] == 0


def test_status_says_when_the_stock_runner_may_be_the_one_at_work(qdb, pg_cluster):
    # flag off (stock trigger in place): our table of runners is not the whole story
    assert json.loads(status(pg_cluster, qdb, "--json"))[0]["stock_trigger"] is True
    assert "stock queue_job_notify trigger present: the flag is off" in status(pg_cluster, qdb)
    with qdb.conn.cursor() as cr:
        schema.apply_flag(cr, True)  # the addon's update with the flag on
    assert json.loads(status(pg_cluster, qdb, "--json"))[0]["stock_trigger"] is False
    assert "trigger present" not in status(pg_cluster, qdb)
