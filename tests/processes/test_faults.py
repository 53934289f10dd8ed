"""Faults on real processes and a real PostgreSQL, on loopback, bounded in
time: killed runners and executors, a saturated executor, a network cut, a
chaos drain with a PostgreSQL restart. Nothing lost, nothing run twice.

These tests restart their PostgreSQL, so they get a cluster of their own."""

import os
import random
import re
import time
from collections import defaultdict
from datetime import timedelta

import pytest

from jobrunner.testing.pgcluster import Cluster, free_port

from jobrunner.testing.fixtures import (build_db, scrape, start_executor, start_runner, stuck_runner,
                                       wait_until)
from .netproxy import CutProxy

UNANSWERED_END = timedelta(seconds=0.5)  # > the longest job: see overlapping()


@pytest.fixture(scope="module")
def fault_cluster():
    with Cluster() as cluster:
        yield cluster


@pytest.fixture
def fdb(fault_cluster, request):
    name = "f_" + re.sub(r"\W", "_", request.node.name)[:40].lower()
    db = build_db(fault_cluster, name, "17", trigger=False)
    yield db
    db.close()


def runner_ids_of(db, pid):
    return [r[0] for r in db.execute("SELECT id FROM queue_job_runner WHERE pid = %s", (pid,))]


def live_runners(db):
    return db.scalar("SELECT count(*) FROM queue_job_runner")


def executions_by_job(db):
    runs = defaultdict(list)
    for job_id, start, end, outcome in db.execute(
            "SELECT job_id, started_at, ended_at, outcome FROM jobrunner_execution ORDER BY started_at"):
        runs[job_id].append((start, end, outcome))
    return runs


def done_executions(runs):
    """job id -> how many of its executions ended done."""
    return defaultdict(int, {job_id: sum(1 for *_x, outcome in execs if outcome == "done")
                             for job_id, execs in runs.items()})


def overlapping(runs):
    """Jobs with two executions open at once. An execution whose end was
    never recorded (its connection died with PostgreSQL or its executor)
    ended, at the latest, when its job's code did: jobs here last < 0.5 s."""
    bad = []
    for job_id, execs in runs.items():
        for (s1, e1, _), (s2, _e2, _) in zip(execs, execs[1:]):
            if (e1 or s1 + UNANSWERED_END) > s2:
                bad.append(job_id)
    return bad


def test_killed_runner_claims_run_elsewhere_within_15s(fdb, fault_cluster, procs):
    with stuck_runner(fault_cluster, fdb, procs, 50) as stuck:
        executor = start_executor(fault_cluster)
        procs.append(executor)
        port = free_port()
        procs.append(start_runner(fault_cluster, [fdb.name], executor.port, "--channels", "root:8",
                                  "--metrics-port", str(port)))
        wait_until(lambda: live_runners(fdb) == 2)
        assert fdb.states() == {"enqueued": 50}  # a live runner's claims are left alone
        stuck.kill()
        t0 = time.monotonic()
        wait_until(lambda: fdb.states() == {"done": 50}, timeout=15, message="the 50 jobs to run elsewhere")
        assert time.monotonic() - t0 < 15
        runs = executions_by_job(fdb)
        assert len(runs) == 50 and all(len(r) == 1 for r in runs.values())
        # requeued by the survivor, and none counted as a killed execution (none had started)
        wait_until(lambda: scrape(port)[("queue_job_runner_requeued_total", ())] == 50,
                   message="50 requeued in /metrics")
        assert scrape(port)[("queue_job_runner_dead_executions_total", ())] == 0


def test_killed_executor_job_is_requeued_then_done_or_found_dead(fdb, fault_cluster, procs):
    executor = start_executor(fault_cluster)
    procs.append(executor)
    port = free_port()
    runner = start_runner(fault_cluster, [fdb.name], executor.port, "--channels", "root:4",
                          "--recovery-interval", "1", "--metrics-port", str(port))
    procs.append(runner)
    wait_until(lambda: live_runners(fdb) == 1)
    [again] = fdb.insert_jobs(1, method_name="sleep", args="[3]", max_retries=3)
    [dead] = fdb.insert_jobs(1, method_name="sleep", args="[3]", max_retries=1)
    fdb.execute("UPDATE queue_job SET retry = 2 WHERE id = %s", (dead,))  # its last allowed try
    wait_until(lambda: fdb.states() == {"started": 2}, message="both started")
    executor.kill()  # mid-run: the lock rows are free, the jobs stay `started`
    wait_until(lambda: fdb.scalar("SELECT state FROM queue_job WHERE id = %s", (dead,)) == "failed",
               timeout=30, message="the job past max_retries to fail")
    assert fdb.execute("SELECT exc_name, retry FROM queue_job WHERE id = %s", (dead,)) == [("JobFoundDead", 3)]
    again_uuid = fdb.scalar("SELECT uuid FROM queue_job WHERE id = %s", (again,))
    wait_until(lambda: any("[job-requeued]" in line and f"uuid={again_uuid}" in line
                           for line in runner.output().splitlines()),
               timeout=30, message="the requeue of the other")
    assert fdb.scalar("SELECT retry FROM queue_job WHERE id = %s", (again,)) == 1  # retry+1
    # both counted as killed executions (the /metrics "killed jobs" of deploy/)
    wait_until(lambda: scrape(port)[("queue_job_runner_dead_executions_total", ())] == 2,
               message="2 killed executions in /metrics")
    executor = start_executor(fault_cluster, port=executor.port)  # back on its port
    procs.append(executor)
    wait_until(lambda: fdb.scalar("SELECT state FROM queue_job WHERE id = %s", (again,)) == "done",
               timeout=30, message="the requeued job to be done")
    assert len(executions_by_job(fdb)[again]) == 2  # the killed try and the good one


def test_saturated_executor_claims_stay_enqueued_60s_untouched(fdb, fault_cluster, procs):
    executor = start_executor(fault_cluster, "--workers", "1")  # one Odoo worker, busy
    procs.append(executor)
    runner = start_runner(fault_cluster, [fdb.name], executor.port, "--channels", "root:5",
                          "--recovery-interval", "1")
    procs.append(runner)
    wait_until(lambda: live_runners(fdb) == 1)
    [long_job] = fdb.insert_jobs(1, method_name="sleep", args="[63]")
    wait_until(lambda: fdb.states() == {"started": 1}, message="the long job to hold the worker")
    waiting = fdb.insert_jobs(4)
    wait_until(lambda: fdb.states() == {"started": 1, "enqueued": 4}, message="1 running, 4 waiting")
    before = fdb.execute("SELECT id, claim_token, date_enqueued FROM queue_job WHERE state = 'enqueued' "
                         "ORDER BY id")
    for _ in range(12):  # 60 s, looked at every 5 s: nothing requeued, nothing sent twice
        time.sleep(5)
        assert fdb.execute("SELECT id, claim_token, date_enqueued FROM queue_job WHERE state = 'enqueued' "
                           "ORDER BY id") == before
        assert fdb.scalar("SELECT count(*) FROM jobrunner_execution") == 1
    assert "re-queued" not in runner.output()
    wait_until(lambda: fdb.states() == {"done": 5}, timeout=30, message="the drain")
    runs = executions_by_job(fdb)
    assert sorted(runs) == sorted([long_job] + waiting) and all(len(r) == 1 for r in runs.values())


def test_network_cut_of_30s_between_a_runner_and_postgresql(fdb, fault_cluster, procs):
    proxy = CutProxy(fault_cluster.host, fault_cluster.port)
    try:
        executor = start_executor(fault_cluster)
        procs.append(executor)
        procs.append(start_runner(fault_cluster, [fdb.name], executor.port, "--channels", "root:4"))
        cut = start_runner(fault_cluster, [fdb.name], executor.port, "--channels", "root:4",
                           "--db-port", str(proxy.port), "--db-timeout", "5")
        procs.append(cut)
        wait_until(lambda: live_runners(fdb) == 2)
        fdb.insert_jobs(600, method_name="sleep_ms", args="[100]")
        [cut_id] = runner_ids_of(fdb, cut.pid)
        wait_until(lambda: fdb.scalar("SELECT count(*) FROM queue_job WHERE claimed_by = %s", (cut_id,)) >= 20,
                   message="the runner behind the proxy to work")
        proxy.cut()
        time.sleep(30)  # the cut itself
        proxy.heal()
        wait_until(lambda: fdb.states() == {"done": 600}, timeout=90, message="the drain after the cut")
        # it resumes by itself, under the same runner id (one identity per
        # process), unless the server still held its old session: then the
        # line naming both ids says so
        wait_until(lambda: cut.output().count("[connected]") >= 2 and runner_ids_of(fdb, cut.pid),
                   timeout=60, message="the cut runner to reconnect")
        [resumed] = runner_ids_of(fdb, cut.pid)
        if resumed != cut_id:
            assert f"now runner {resumed} (was {cut_id})" in cut.output()
        first_batch = fdb.scalar("SELECT max(id) FROM queue_job")
        fdb.insert_jobs(400, method_name="sleep_ms", args="[20]")
        wait_until(lambda: fdb.states() == {"done": 1000}, timeout=90, message="the second drain")
        assert fdb.scalar("SELECT count(*) FROM queue_job WHERE claimed_by = %s AND id > %s",
                          (resumed, first_batch)) > 0
        assert cut.alive()
        runs = executions_by_job(fdb)
        assert len(runs) == 1000 and all(len(r) == 1 for r in runs.values())  # none twice
    finally:
        proxy.close()


def test_chaos_10000_jobs_kill_9_runners_and_restart_postgresql(fdb, fault_cluster, procs):
    rnd = random.Random(6)
    rows, designed_to_fail = [], 0
    base = fdb.scalar("SELECT now() AT TIME ZONE 'utc'") - timedelta(hours=1)
    for i in range(10000):
        if rnd.random() < 0.01:
            rows.append(("root", 10, base, None, "fail", "[]"))
            designed_to_fail += 1
        else:
            rows.append(("root", 10, base, None, "sleep_ms", f"[{rnd.randint(0, 200)}]"))
    fdb.insert_rows(rows)
    executor = start_executor(fault_cluster)
    procs.append(executor)
    args = ("--channels", "root:8", "--recovery-interval", "1", "--db-timeout", "5")
    runners = [start_runner(fault_cluster, [fdb.name], executor.port, *args) for _ in range(4)]
    procs.extend(runners)

    def left():
        return fdb.scalar("SELECT count(*) FROM queue_job WHERE state NOT IN ('done', 'failed')")

    deadline = time.monotonic() + 300
    restarted = False
    kills = 0
    while left() and time.monotonic() < deadline:
        time.sleep(2)  # the chaos period
        victim = rnd.randrange(4)
        runners[victim].kill()
        kills += 1
        runners[victim] = start_runner(fault_cluster, [fdb.name], executor.port, *args)
        procs.append(runners[victim])
        if not restarted and kills == 5:
            fdb.close()
            fault_cluster.restart()
            restarted = True
    assert restarted and kills >= 5
    wait_until(lambda: not left(), timeout=120, message="every job to end")
    states = fdb.states()
    assert states == {"done": 10000 - designed_to_fail, "failed": designed_to_fail}, states
    assert fdb.scalar("SELECT count(*) FROM queue_job WHERE state = 'failed' AND method_name <> 'fail'") == 0
    runs = executions_by_job(fdb)
    assert overlapping(runs) == []
    done_runs = done_executions(runs)
    assert all(done_runs[j] == 1 for (j,) in fdb.execute("SELECT id FROM queue_job WHERE state = 'done'"))


def test_postgresql_crash_mid_drain_loses_no_job_and_runs_none_twice(procs):
    """A claim commits without waiting for the WAL flush (claim.sql). On a
    server whose other commits do wait, as Odoo's, an immediate stop (a
    crash: what was not yet written is gone) in the middle of a drain: every
    job still ends done, once, never two executions at once."""
    with Cluster(settings={"synchronous_commit": "on"}) as cluster:
        db = build_db(cluster, "crash", "17", trigger=False)
        rnd = random.Random(7)
        base = db.scalar("SELECT now() AT TIME ZONE 'utc'") - timedelta(hours=1)
        db.insert_rows([("root", 10, base, None, "sleep_ms", f"[{rnd.randint(0, 10)}]")
                        for _ in range(1500)])
        executor = start_executor(cluster)
        procs.append(executor)
        args = ("--channels", "root:8", "--recovery-interval", "1", "--db-timeout", "5")
        runners = [start_runner(cluster, [db.name], executor.port, *args) for _ in range(2)]
        procs.extend(runners)
        done = "SELECT count(*) FROM queue_job WHERE state = 'done'"
        wait_until(lambda: db.scalar(done) >= 300, timeout=120, message="300 jobs done")
        db.close()
        cluster.restart("immediate")
        wait_until(lambda: db.scalar(done) == 1500, timeout=180, message="every job done")
        runs = executions_by_job(db)
        assert overlapping(runs) == []
        done_runs = done_executions(runs)
        assert all(done_runs[j] == 1 for (j,) in db.execute("SELECT id FROM queue_job"))
        db.close()
        for proc in (*runners, executor):  # before their server goes
            proc.kill()


def test_runner_never_logs_passwords(fdb, fault_cluster, procs):
    secret = "s3cr3t-Pw"
    executor = start_executor(fault_cluster)
    procs.append(executor)
    down = start_runner(fault_cluster, [fdb.name], executor.port, "--db-port", str(free_port()),
                        "--db-password", secret, "--log-level", "DEBUG")
    procs.append(down)
    wait_until(lambda: down.output().count("unreachable") >= 2, message="two failed attempts")
    up = start_runner(fault_cluster, [fdb.name], executor.port, "--log-level", "DEBUG",
                      env={"ODOO_QUEUE_JOB_JOBRUNNER_DB_PASSWORD": secret,
                           "ODOO_QUEUE_JOB_HTTP_AUTH_PASSWORD": secret,
                           "ODOO_QUEUE_JOB_HTTP_AUTH_USER": "u"})
    procs.append(up)
    fdb.insert_jobs(5)
    wait_until(lambda: fdb.states() == {"done": 5})
    up.terminate()
    for proc in (down, up, executor):
        assert secret not in proc.output()
        assert "password=" not in proc.output()


LONG_JOB_SECONDS = float(os.environ.get("QJSL_LONG_JOB_SECONDS", "25"))  # 120 when run by hand


def test_a_long_job_is_never_requeued_and_nothing_is_written_while_it_runs(fdb, fault_cluster, procs):
    """Liveness of a running job is the lock its executor holds on its
    queue_job_lock row, not a heartbeat: while one job runs for a long time
    and two runners recover every 0.2 s, no row of queue_job, queue_job_lock
    or queue_job_runner is written (same row versions; PostgreSQL's own row
    counters unchanged) and the job runs once."""
    executor = start_executor(fault_cluster)
    procs.append(executor)
    for _ in range(2):
        procs.append(start_runner(fault_cluster, [fdb.name], executor.port, "--channels", "root:2",
                                  "--recovery-interval", "0.2", "--wakeup", "poll"))
    wait_until(lambda: live_runners(fdb) == 2)
    [job] = fdb.insert_jobs(1, method_name="sleep", args=f"[{LONG_JOB_SECONDS}]")
    wait_until(lambda: fdb.scalar("SELECT state FROM queue_job WHERE id = %s", (job,)) == "started",
               message="the long job to start")
    started = time.monotonic()

    def versions():
        return fdb.execute(
            "SELECT 'job', ctid::text, xmin::text FROM queue_job WHERE id = %(id)s "
            "UNION ALL SELECT 'lock', ctid::text, xmin::text FROM queue_job_lock WHERE queue_job_id = %(id)s "
            "UNION ALL SELECT 'runner ' || id, ctid::text, xmin::text FROM queue_job_runner "
            "ORDER BY 1", {"id": job})

    def writes():
        return fdb.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE relname IN ('queue_job', 'queue_job_lock', 'queue_job_runner') ORDER BY 1")

    first = versions()
    time.sleep(11)  # a backend flushes its row counters within 10 s: the start is in them
    counted = writes()
    time.sleep(max(0.0, LONG_JOB_SECONDS - (time.monotonic() - started) - 3))  # until just before its end
    assert versions() == first  # no row rewritten: same versions all along
    assert writes() == counted
    assert fdb.scalar("SELECT state FROM queue_job WHERE id = %s", (job,)) == "started"
    wait_until(lambda: fdb.scalar("SELECT state FROM queue_job WHERE id = %s", (job,)) == "done",
               timeout=60, message="the long job to end")
    assert fdb.scalar("SELECT count(*) FROM jobrunner_execution WHERE job_id = %s", (job,)) == 1
    assert fdb.scalar("SELECT retry FROM queue_job WHERE id = %s", (job,)) == 1  # never requeued
    assert all("[job-requeued]" not in p.output() for p in procs[1:])
