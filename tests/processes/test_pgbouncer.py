"""Runners behind a real PgBouncer in transaction pooling mode."""


import pytest

from jobrunner.testing.pgcluster import free_port

from jobrunner.testing.fixtures import (registered_runners, start_executor, start_runner,
                                       stuck_runner, wait_until)
from .pgbouncer import PgBouncer


@pytest.fixture
def pgbouncer(pg_cluster):
    bouncer = PgBouncer(pg_cluster, pool_mode="transaction", pool_size=6)
    yield bouncer
    bouncer.close()


def via(bouncer):
    return ("--db-port", str(bouncer.port))


def test_poll_mode_through_transaction_pooling_drains_and_keeps_liveness(qdb, pg_cluster, pgbouncer, procs):
    with stuck_runner(pg_cluster, qdb, procs, 5, "--wakeup", "poll", *via(pgbouncer), channel="root.held") as stuck:
        executor = start_executor(pg_cluster)
        procs.append(executor)
        workers = [start_runner(pg_cluster, [qdb.name], executor.port, "--channels", "root:4", "--wakeup",
                                "poll", "--poll-max", "0.5", "--recovery-interval", "1", *via(pgbouncer))
                   for _ in range(2)]
        procs.extend(workers)
        wait_until(lambda: registered_runners(qdb) == 3)
        qdb.insert_jobs(200, method_name="sleep_ms", args="[2]")
        wait_until(lambda: qdb.states() == {"done": 200, "enqueued": 5}, timeout=60, message="the drain")
        # the stuck runner is alive through the pooler: its claims are left alone
        assert qdb.scalar("SELECT count(*) FROM queue_job WHERE state = 'enqueued'") == 5
        stuck.kill()  # its client connection goes, PgBouncer drops its session: the lock is free
        wait_until(lambda: qdb.states() == {"done": 205}, timeout=30, message="its claims to run elsewhere")
        runs = qdb.execute("SELECT job_id, count(*) FROM jobrunner_execution GROUP BY 1 HAVING count(*) > 1")
        assert runs == []
        assert all(w.alive() for w in workers)


def test_notify_mode_through_transaction_pooling_is_refused(qdb, pg_cluster, pgbouncer, procs):
    runner = start_runner(pg_cluster, [qdb.name], free_port(), "--wakeup", "notify", *via(pgbouncer))
    procs.append(runner)
    assert runner.popen.wait(timeout=60) == 2
    lines = [line for line in runner.output().splitlines() if "error" in line.lower()]
    assert len(lines) == 1, runner.output()
    assert "--wakeup poll" in lines[0]
