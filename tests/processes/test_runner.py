"""The runner as users run it: real processes, real HTTP, a real PostgreSQL."""

import time
from collections import defaultdict
from datetime import timedelta

import pytest

from jobrunner import hint

from jobrunner.testing.fixtures import (max_overlap, registered_runners, start_executor, start_runner,
                                       wait_until)


def test_three_runners_two_databases_every_job_once_capacity_held(qdb, second_db, pg_cluster, procs):
    executor = start_executor(pg_cluster, "--pool", "64")
    procs.append(executor)
    dbs = [qdb, second_db]
    channels = "root:4,root.sub:2"
    for _ in range(3):
        procs.append(start_runner(pg_cluster, [d.name for d in dbs], executor.port,
                                  "--channels", channels, "--poll-max", "0.5"))
    wait_until(lambda: all(registered_runners(d) == 3 for d in dbs), message="3 runners per db")
    # which process holds which registry id in each database
    pid_of = {(d.name, rid): pid for d in dbs for rid, pid in d.execute("SELECT id, pid FROM queue_job_runner")}

    for d in dbs:
        d.insert_jobs(3500, method_name="sleep_ms", args="[3]")
        d.insert_jobs(1500, channel="root.sub", method_name="sleep_ms", args="[6]")
    wait_until(lambda: all(d.states() == {"done": 5000} for d in dbs), timeout=300,
               message="both databases drained")

    per_pid, per_pid_sub = defaultdict(list), defaultdict(list)
    for d in dbs:
        runs = d.execute("SELECT job_id, runner_id, channel, started_at, ended_at, outcome "
                         "FROM jobrunner_execution")
        assert len(runs) == 5000 and len({r[0] for r in runs}) == 5000  # each job exactly once
        assert {r[5] for r in runs} == {"done"}
        for _, runner_id, channel, start, end, _ in runs:
            pid = pid_of[(d.name, runner_id)]
            per_pid[pid].append((start, end))
            if channel == "root.sub":
                per_pid_sub[pid].append((start, end))
    assert len(per_pid) == 3  # all three runners worked
    # node capacity holds per runner process, across both databases
    assert max(max_overlap(v) for v in per_pid.values()) <= 4
    assert max(max_overlap(v) for v in per_pid_sub.values()) <= 2
    assert max(max_overlap(v) for v in per_pid.values()) >= 2  # concurrency really happened
    for p in procs[1:]:
        assert p.terminate() == 0


def test_stale_token_does_not_run_a_reclaimed_job(qdb, pg_cluster, procs):
    import urllib.request

    from jobrunner import claim

    executor = start_executor(pg_cluster)
    procs.append(executor)
    [job_id] = qdb.insert_jobs(1)
    with qdb.conn.cursor() as cr:
        [first], _ = claim.claim_channels(cr, 1, 1)
        assert claim.release(cr, [first]) == [job_id]
        [second], _ = claim.claim_channels(cr, 2, 1)
    assert first.token != second.token

    def runjob(token):
        url = (f"http://127.0.0.1:{executor.port}/queue_job/runjob?db={qdb.name}"
               f"&job_uuid={second.uuid}" + (f"&token={token}" if token else ""))
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status

    assert runjob(first.token) == 200  # the stale request of the first claim
    assert runjob(None) == 200  # no token at all
    assert qdb.execute("SELECT state, claim_token FROM queue_job") == [("enqueued", second.token)]
    assert qdb.scalar("SELECT count(*) FROM jobrunner_execution") == 0
    assert runjob(second.token) == 200
    assert qdb.execute("SELECT state FROM queue_job") == [("done",)]
    assert qdb.scalar("SELECT count(*) FROM jobrunner_execution") == 1


def _claim_calls(db, prepared=False):
    """Claims run, counted by pg_stat_statements (the prepared claim's
    executions are counted under its PREPARE text)."""
    return db.scalar("SELECT COALESCE(sum(calls), 0) FROM pg_stat_statements s "
                     "JOIN pg_database d ON d.oid = s.dbid "
                     "WHERE d.datname = current_database() AND s.query LIKE '%%chans(ch)%%' "
                     "AND (NOT %s OR s.query LIKE 'PREPARE qjsl_claim%%')", (prepared,))


def _listen_calls(db):
    return db.scalar("SELECT COALESCE(sum(calls), 0) FROM pg_stat_statements s "
                     "JOIN pg_database d ON d.oid = s.dbid "
                     "WHERE d.datname = current_database() AND s.query ILIKE 'LISTEN%%'")


@pytest.mark.parametrize("wakeup", ["poll", "notify"])
def test_idle_runner_backs_off_to_the_cap(qdb, pg_cluster, procs, wakeup):
    qdb.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    executor = start_executor(pg_cluster)
    procs.append(executor)
    cap = 1.0
    runner = start_runner(pg_cluster, [qdb.name], executor.port, "--wakeup", wakeup,
                          "--poll-min", "0.05", "--poll-max", str(cap))
    procs.append(runner)
    wait_until(lambda: registered_runners(qdb) == 1)
    wait_until(lambda: _claim_calls(qdb) >= 8, message="backoff to reach its cap")  # 0.05 .. 1.0
    before, t0 = _claim_calls(qdb), time.monotonic()
    time.sleep(5)  # the measurement window itself, not a synchronization
    calls, window = _claim_calls(qdb) - before, time.monotonic() - t0
    assert calls <= window / (cap / 2) + 1  # jitter draws each sleep from [cap/2, cap]
    assert calls >= 1  # it still polls
    if wakeup == "poll":
        assert _listen_calls(qdb) == 0  # poll mode never LISTENs
    else:
        assert _listen_calls(qdb) >= 1
    # idle polls run the plain claim, one statement each (a poll-mode runner
    # never prepares: a transaction pooler may be there)
    assert _claim_calls(qdb, prepared=True) == 0


def test_a_busy_notify_runner_claims_prepared_and_ddl_mid_drain_loses_nothing(qdb, pg_cluster, procs):
    """In a spell of work a notify-mode runner runs its claim's prepared
    generic plan; DDL on queue_job meanwhile (a module upgrade adding a
    column) makes PostgreSQL re-plan it, and every job runs exactly once
    with no error and no reconnect."""
    qdb.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    executor = start_executor(pg_cluster, "--pool", "16")
    procs.append(executor)
    runner = start_runner(pg_cluster, [qdb.name], executor.port, "--wakeup", "notify",
                          "--channels", "root:4", "--poll-max", "0.5")
    procs.append(runner)
    wait_until(lambda: registered_runners(qdb) == 1)
    qdb.insert_jobs(2000, method_name="sleep_ms", args="[2]")
    wait_until(lambda: _claim_calls(qdb, prepared=True) >= 20, message="prepared claims")
    qdb.execute("ALTER TABLE queue_job ADD COLUMN qjsl_test_extra integer")
    at_ddl = _claim_calls(qdb, prepared=True)
    wait_until(lambda: qdb.states() == {"done": 2000}, timeout=300, message="the drain")
    runs = qdb.execute("SELECT job_id, outcome FROM jobrunner_execution")
    assert len(runs) == 2000 and len({r[0] for r in runs}) == 2000
    assert {r[1] for r in runs} == {"done"}
    assert _claim_calls(qdb, prepared=True) > at_ddl  # still prepared after the DDL
    out = runner.output()
    assert out.count("connected to") == 1 and "ERROR" not in out, out[-3000:]
    assert runner.terminate() == 0


def test_hint_wakes_an_idle_runner_before_its_timer(qdb, pg_cluster, procs):
    executor = start_executor(pg_cluster)
    procs.append(executor)
    runner = start_runner(pg_cluster, [qdb.name], executor.port, "--wakeup", "notify",
                          "--poll-min", "60", "--poll-max", "60", "--recovery-interval", "60",
                          "--log-level", "DEBUG")
    procs.append(runner)
    wait_until(lambda: registered_runners(qdb) == 1)
    wait_until(lambda: "sleep 60" in runner.output(), message="the runner to go idle")
    qdb.insert_jobs(1)
    with qdb.conn.cursor() as cr:
        hint.notify(cr)  # after the enqueuing commit, from outside it
    wait_until(lambda: qdb.states() == {"done": 1}, timeout=20, message="the job to run")
    assert "woken by hint" in runner.output()
    assert "woken by timer" not in runner.output()


def test_future_eta_runs_after_eta_within_one_step(qdb, pg_cluster, procs):
    executor = start_executor(pg_cluster)
    procs.append(executor)
    runner = start_runner(pg_cluster, [qdb.name], executor.port, "--poll-max", "5", "--wakeup", "poll")
    procs.append(runner)
    wait_until(lambda: registered_runners(qdb) == 1)
    eta = qdb.scalar("SELECT (now() AT TIME ZONE 'utc') + interval '2 seconds'")
    qdb.insert_jobs(1, eta=eta)
    wait_until(lambda: qdb.states() == {"done": 1}, timeout=20, message="the eta job to run")
    started = qdb.scalar("SELECT date_started FROM queue_job")
    assert started >= eta
    assert started - eta <= timedelta(seconds=1)  # woken at the eta, not at the next poll


def test_sigterm_during_a_drain_hands_back_claims_and_exits_0(qdb, pg_cluster, procs):
    # two executor "workers" for a runner of capacity 6: claims wait enqueued
    executor = start_executor(pg_cluster, "--workers", "2")
    procs.append(executor)
    runner = start_runner(pg_cluster, [qdb.name], executor.port, "--channels", "root:6",
                          "--grace", "15")
    procs.append(runner)
    wait_until(lambda: registered_runners(qdb) == 1)
    runner_id = qdb.scalar("SELECT id FROM queue_job_runner")
    qdb.insert_jobs(30, method_name="sleep", args="[0.5]")
    # a job started (the executor has made its execution log) and claims wait
    # for a worker: on a loaded machine the claims can come before either
    wait_until(lambda: (lambda s: s.get("enqueued", 0) >= 3 and s.get("started", 0) >= 1)(qdb.states()),
               message="claims waiting for a worker")
    t0 = time.monotonic()
    assert runner.terminate(timeout=30) == 0
    assert time.monotonic() - t0 < 15
    left = qdb.execute("SELECT state, count(*) FROM queue_job WHERE claimed_by = %s "
                       "AND state IN ('enqueued', 'started') GROUP BY 1", (runner_id,))
    assert left == []  # nothing stays enqueued (or started) for the stopped runner
    assert qdb.scalar("SELECT count(*) FROM queue_job_runner") == 0
    assert qdb.scalar("SELECT count(*) FROM queue_job WHERE state = 'pending'") > 0
    runs = qdb.execute("SELECT job_id, count(*) FROM jobrunner_execution GROUP BY 1 HAVING count(*) > 1")
    assert runs == []


def test_dispatch_refused_hands_job_back_at_once_and_backs_off(qdb, pg_cluster, procs):
    from jobrunner.testing.pgcluster import free_port

    closed_port = free_port()  # nothing listens: connection refused
    runner = start_runner(pg_cluster, [qdb.name], closed_port, "--channels", "root:1", "--wakeup", "poll",
                          "--poll-min", "0.05", "--poll-max", "0.2")
    procs.append(runner)
    wait_until(lambda: registered_runners(qdb) == 1)
    [job_id] = qdb.insert_jobs(1)
    wait_until(lambda: f"executor http://127.0.0.1:{closed_port} did not take 1 job(s) (refused)"
               in runner.output(), message="the refused dispatch")
    # handed back: pending, token cleared, not failed, not lost
    wait_until(lambda: qdb.execute("SELECT state, claimed_by, claim_token FROM queue_job")
               == [("pending", None, None)], message="the job back in pending")
    # once an executor listens there, the job runs, and the streak's end is said
    executor = start_executor(pg_cluster, port=closed_port)
    procs.append(executor)
    wait_until(lambda: qdb.states() == {"done": 1}, timeout=30, message="the job to run")
    wait_until(lambda: "[executor-taking]" in runner.output(), message="the streak's end")
    assert runner.output().count("[executor-not-taking]") == 1


def test_supervised_runner_stops_when_its_server_is_killed(qdb, pg_cluster, procs):
    # The Odoo addon starts the runner as a child of the server. If the server
    # is SIGKILLed, the runner must not live on as an orphan holding claims.
    import sys

    from jobrunner.parent import PARENT_PID_ENV

    from jobrunner.testing.fixtures import Proc, db_args

    executor = start_executor(pg_cluster, "--workers", "1")
    procs.append(executor)
    runner_argv = [sys.executable, "-m", "jobrunner", "run", *db_args(pg_cluster),
                   "--database", qdb.name, "--port", str(executor.port), "--channels", "root:4"]
    server = Proc(["-c", "import os, subprocess, sys, time\n"
                         f"env = dict(os.environ, {PARENT_PID_ENV}=str(os.getpid()))\n"
                         "print(subprocess.Popen(sys.argv[1:], env=env).pid, flush=True)\n"
                         "time.sleep(3600)\n", *runner_argv])
    procs.append(server)
    wait_until(lambda: registered_runners(qdb) == 1)
    qdb.insert_jobs(20, method_name="sleep", args="[0.3]")
    wait_until(lambda: qdb.states().get("enqueued", 0) >= 1, message="claims waiting for the worker")
    runner_pid = int(server.output().split()[0])
    server.kill()
    # it stops by itself, gracefully: claims handed back, registry row removed
    wait_until(lambda: registered_runners(qdb) == 0, timeout=60, message="the orphan runner to stop")
    assert qdb.scalar("SELECT count(*) FROM queue_job WHERE state = 'enqueued'") == 0
    assert f"parent process {server.pid} is gone: stopping" in server.output()

    def gone():
        try:
            with open(f"/proc/{runner_pid}/stat") as f:
                return f.read().split(")")[-1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    wait_until(gone, timeout=30, message="the runner process to exit")


def test_a_prefork_executor_shares_one_socket_across_processes(qdb, pg_cluster, procs):
    """The reference executor as Odoo's prefork workers: --processes 2, one
    listening socket, and each connection served by whichever process is
    free (the dispatch benchmark's executor)."""
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from jobrunner.runjob import TOKEN_HEADER

    if qdb.version != "17":
        pytest.skip("the executor does not depend on the series")
    executor = start_executor(pg_cluster, "--processes", "2")
    procs.append(executor)
    # jobs that hold their process busy, enqueued with tokens as a claim leaves them
    qdb.insert_jobs(120, method_name="spin_ms", args="[10]")
    qdb.execute("UPDATE queue_job SET state = 'enqueued', claim_token = md5(id::text)")

    def run(uuid_token):
        uuid, token = uuid_token
        request = urllib.request.Request(  # a new connection each: any process may take it
            f"http://127.0.0.1:{executor.port}/queue_job/runjob?db={qdb.name}&job_uuid={uuid}",
            headers={TOKEN_HEADER: token})
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(run, qdb.execute("SELECT uuid, claim_token FROM queue_job")))
    assert statuses == [200] * 120 and qdb.states() == {"done": 120}
    pids = qdb.execute("SELECT executor_pid, count(*) FROM jobrunner_execution GROUP BY 1")
    assert len(pids) == 2 and sum(n for _pid, n in pids) == 120, pids
    assert executor.terminate() == 0


def test_queue_job_runner_wait_exit_codes(qdb, pg_cluster, procs):
    """queue-job-runner wait UUID: 0 done, 3 failed, 4 cancelled, 5 timed
    out, 6 unknown; --json gives state, result and error."""
    import json
    import subprocess
    import sys

    from jobrunner.testing.fixtures import db_args

    if qdb.version != "17":
        pytest.skip("the command does not depend on the series")
    ids = qdb.insert_jobs(4)
    uuids = dict(qdb.execute("SELECT id, uuid FROM queue_job"))
    for job_id, state in zip(ids, ("failed", "cancelled")):
        qdb.execute("UPDATE queue_job SET state = %s, exc_message = 'boom' WHERE id = %s",
                    (state, job_id))

    def wait(uuid, *extra):
        return subprocess.run([sys.executable, "-m", "jobrunner", "wait", uuid, *db_args(pg_cluster),
                               "--database", qdb.name, *extra], capture_output=True, text=True,
                              timeout=120)

    assert wait(uuids[ids[0]]).returncode == 3
    assert wait(uuids[ids[1]]).returncode == 4
    res = wait(uuids[ids[2]], "--timeout", "0.3", "--json")
    assert res.returncode == 5 and json.loads(res.stdout)["state"] == "pending"
    assert wait("no-such-uuid").returncode == 6
    # a job run while we wait: the executor's "job ended" hint wakes the wait
    executor = start_executor(pg_cluster)
    procs.append(executor)
    procs.append(start_runner(pg_cluster, [qdb.name], executor.port, "--channels", "root:1"))
    res = wait(uuids[ids[3]], "--timeout", "60", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["state"] == "done" and json.loads(res.stdout)["result"] == "ok"
