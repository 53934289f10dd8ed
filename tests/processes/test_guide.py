"""The migration guide, walked on the reference executor: stock queue_job's
own runner (OCA's unmodified code, as jobrunner/testing/oca.py runs it) → flag on
(what `-u queue_job_skiplocked` does to the schema) → three of our runners
→ flag off → the stock runner again, with jobs flowing throughout: none
lost, none run twice."""

import subprocess
import sys
import threading
import time

import pytest

from jobrunner import hint, schema

from jobrunner.testing.fixtures import (db_args, insert_jobs, registered_runners, start_executor, start_runner,
                                       wait_until)


@pytest.fixture(scope="module")
def oca_runner():
    from jobrunner.testing.oca import OcaRunner

    try:
        runner = OcaRunner()
    except subprocess.CalledProcessError:
        pytest.skip("cannot download odoo-addon-queue-job from PyPI here")
    yield runner
    runner.close()


class Enqueuer:
    """Jobs flowing all along: one small transaction every 20 ms, with a hint
    after each commit (ignored by the stock runner, which has its trigger)."""

    def __init__(self, db):
        self.db, self.count = db, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        conn = self.db.connect()
        with conn.cursor() as cr:
            while not self.stop.is_set():
                insert_jobs(cr, 3, method_name="sleep_ms", args="[20]")
                self.count += 3
                hint.notify(cr)
                time.sleep(0.02)
        conn.close()

    def close(self):
        self.stop.set()
        self.thread.join()


def test_walk_the_guide_stock_flag_on_three_runners_flag_off(stock_db, pg_cluster, procs, oca_runner):
    db = stock_db
    if db.version != "17":
        pytest.skip("OCA's 17.0 runner")
    executor = start_executor(pg_cluster)
    procs.append(executor)
    # Install: the schema additions (the addon's install applies the same file)
    res = subprocess.run([sys.executable, "-m", "jobrunner", "migrate", *db_args(pg_cluster),
                          "--database", db.name], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    with db.conn.cursor() as cr:
        assert schema.stock_trigger_present(cr)  # flag off: stock, trigger kept
    enqueuer = Enqueuer(db)
    try:
        stock = oca_runner.start(pg_cluster, db.name, executor.port, "root:4")
        procs.append(stock)
        wait_until(lambda: db.scalar("SELECT count(*) FROM queue_job WHERE state = 'done'") >= 60,
                   timeout=60, message="the stock runner to run jobs")
        # Turn the flag on: stop the stock runner, update the addon (drops the trigger)
        stock.terminate()
        with db.conn.cursor() as cr:
            assert schema.apply_flag(cr, True) == "dropped"
        runners = [start_runner(pg_cluster, [db.name], executor.port, "--channels", "root:4")
                   for _ in range(3)]
        procs.extend(runners)
        wait_until(lambda: registered_runners(db) == 3)
        mark = db.scalar("SELECT count(*) FROM queue_job WHERE state = 'done'")
        wait_until(lambda: db.scalar("SELECT count(*) FROM queue_job WHERE state = 'done'") >= mark + 150,
                   timeout=60, message="our three runners to run jobs")
        ours = db.scalar("SELECT count(DISTINCT claimed_by) FROM queue_job WHERE claimed_by IS NOT NULL")
        assert ours == 3
        # Roll back: stop our runners (claims handed back), flag off (trigger back), stock runner
        for r in runners:
            assert r.terminate(timeout=60) == 0
        with db.conn.cursor() as cr:
            assert schema.apply_flag(cr, False) == "restored"
        stock = oca_runner.start(pg_cluster, db.name, executor.port, "root:4")
        procs.append(stock)
        mark = db.scalar("SELECT count(*) FROM queue_job WHERE state = 'done'")
        wait_until(lambda: db.scalar("SELECT count(*) FROM queue_job WHERE state = 'done'") >= mark + 60,
                   timeout=60, message="the stock runner to run jobs again")
    finally:
        enqueuer.close()
    wait_until(lambda: db.scalar("SELECT count(*) FROM queue_job WHERE state <> 'done'") == 0,
               timeout=120, message="everything to drain")
    assert db.scalar("SELECT count(*) FROM queue_job") == enqueuer.count  # none lost
    twice = db.execute("SELECT job_id FROM jobrunner_execution GROUP BY 1 HAVING count(*) > 1")
    assert twice == []  # none run twice
    assert db.scalar("SELECT count(DISTINCT job_id) FROM jobrunner_execution") == enqueuer.count
