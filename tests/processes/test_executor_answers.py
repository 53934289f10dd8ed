"""What the runner does with each kind of runjob answer, and how it speaks
each series' runjob protocol: real runner processes, real HTTP.

An executor that does not take the job (4xx, 5xx, refused, no answer, or 200
without starting it) is never hammered in silence: the job goes back to
pending untouched, the runner backs off, counts the answer in /metrics and
logs it once per streak with its likely cause."""

import http.client
import http.server
import re
import socket
import threading
import time

import pytest

from jobrunner.testing.fixtures import (http_get, max_overlap, registered_runners, scrape,
                                       start_executor, start_runner, wait_until)
from jobrunner.testing.pgcluster import free_port


class Loopback:
    """A real HTTP server on loopback, in a thread; do_get(handler) answers."""

    protocol = "HTTP/1.0"  # one request per connection

    def __init__(self):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = outer.protocol

            def do_GET(self):
                outer.do_get(self)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Answerer(Loopback):
    """Answers every request the same way: a status code, or "lost" (the
    connection closed without an answer)."""

    def __init__(self, answer):
        self.answer = answer
        self.requests = []
        super().__init__()

    def do_get(self, handler):
        self.requests.append((handler.path, dict(handler.headers)))
        if self.answer == "lost":
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        handler.send_response(self.answer)
        handler.send_header("Content-Length", "0")
        handler.end_headers()


# answer -> (the outcome the runner names, a word of the cause it gives)
ANSWERS = {
    401: ("http-401", "--http-auth-user"),
    404: ("http-404", "X-Odoo-Database"),
    503: ("http-503", "that Odoo's log"),
    200: ("http-200", "runjob-refused"),
    "lost": ("lost", "without an answer"),
    "refused": ("refused", "nothing listens"),
}


def _metric(port, name, **labels):
    _status, body = http_get(port, "/metrics")
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{name}{{{re.escape(want)}}} (\d+)", body, re.MULTILINE)
    return int(match.group(1)) if match else 0


@pytest.mark.parametrize("answer", list(ANSWERS), ids=str)
def test_an_answer_that_takes_no_job_backs_off_is_counted_and_logged_once(qdb, pg_cluster, procs, answer):
    if qdb.version != "17":
        pytest.skip("the same on every series")
    outcome, cause = ANSWERS[answer]
    answerer = None
    if answer == "refused":
        port = free_port()  # nothing listens there
    else:
        answerer = Answerer(answer)
        port = answerer.port
    metrics_port = free_port()
    runner = start_runner(pg_cluster, [qdb.name], port, "--channels", "root:2", "--wakeup", "poll",
                          "--poll-min", "0.01", "--poll-max", "0.05", "--metrics-port",
                          str(metrics_port))
    procs.append(runner)
    try:
        wait_until(lambda: registered_runners(qdb) == 1)
        qdb.insert_jobs(2)
        target = f"http://127.0.0.1:{port}"
        # the backoff doubles from 0.1 s: within ~3 s, six attempts or so
        wait_until(lambda: _metric(metrics_port, "queue_job_runner_not_taken_total",
                                   target=target, answer=outcome) >= 8,
                   timeout=60, message=f"{outcome} answers counted")
        lines = [line for line in runner.output().splitlines() if "[executor-not-taking]" in line]
        assert len(lines) == 1, lines  # once per streak, not once per answer
        assert f"executor {target} did not take" in lines[0] and outcome in lines[0]
        assert cause in lines[0]
        if answerer is not None:
            # backed off: far fewer requests than the 0.01 s poll would send
            start = len(answerer.requests)
            time.sleep(2)  # an observation window, not a synchronization
            assert len(answerer.requests) - start <= 2 * 4  # 2 jobs, backoff at 5 s cap soon
        # nothing lost or run: both jobs back in pending, token cleared
        wait_until(lambda: qdb.execute("SELECT state, claim_token FROM queue_job")
                   == [("pending", None)] * 2, message="the jobs back in pending")
    finally:
        if answerer is not None:
            answerer.close()


class Forwarder(Loopback):
    """Passes each runjob request on to a real executor and its answer back
    without the job-state header: an executor that does not say the job
    ended (stock queue_job's runjob)."""

    protocol = "HTTP/1.1"  # keep-alive, as the reference executor

    def __init__(self, port):
        self.to = port
        super().__init__()

    def do_get(self, handler):
        conn = http.client.HTTPConnection("127.0.0.1", self.to, timeout=60)
        conn.request("GET", handler.path, headers=dict(handler.headers))
        answer = conn.getresponse()
        body = answer.read()
        conn.close()
        handler.send_response(answer.status)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def _states_queries(db):
    """Runs of the runner's states query (`inflight_states`) in db."""
    return db.scalar("SELECT COALESCE(sum(calls), 0) FROM pg_stat_statements s "
                     "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database() "
                     "AND s.query LIKE '%%state, claim_token FROM queue_job WHERE id = ANY%%'")


@pytest.mark.parametrize("says_ended", [True, False], ids=["says-ended", "silent"])
def test_an_answer_saying_the_job_ended_frees_its_slot_without_asking_the_database(
        qdb, pg_cluster, procs, says_ended):
    """The executor's answer says done or failed (X-Queue-Job-State): the
    runner frees the slot at once, no states query. An answer without it
    (stock queue_job) is checked in the database, as before. Either way
    every job ends once and the capacity holds."""
    if qdb.version != "17":
        pytest.skip("the same on every series")
    qdb.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    executor = start_executor(pg_cluster)
    procs.append(executor)
    forwarder = None if says_ended else Forwarder(executor.port)
    metrics_port = free_port()
    runner = start_runner(pg_cluster, [qdb.name], (forwarder or executor).port, "--channels",
                          "root:4", "--metrics-port", str(metrics_port))
    procs.append(runner)
    try:
        wait_until(lambda: registered_runners(qdb) == 1)
        before = _states_queries(qdb)
        qdb.insert_jobs(60, method_name="sleep_ms", args="[2]")
        qdb.insert_jobs(5, method_name="fail")
        wait_until(lambda: qdb.states() == {"done": 60, "failed": 5}, timeout=120,
                   message="the jobs to end")
        # every slot freed and counted by what ended it
        def seen_ended():
            samples = scrape(metrics_port)
            return (samples[("queue_job_runner_done_total", ())],
                    samples[("queue_job_runner_failed_total", ())])

        wait_until(lambda: seen_ended() == (60, 5), message="the runner to see every job end")
        queries = _states_queries(qdb) - before
        runs = qdb.execute("SELECT job_id, started_at, ended_at FROM jobrunner_execution")
    finally:
        if forwarder is not None:
            forwarder.close()
    assert len(runs) == 65 and len({r[0] for r in runs}) == 65  # each job once
    assert max_overlap([(r[1], r[2]) for r in runs]) <= 4
    # a failed job's HTTP 500 that says "failed" is a job taken: no backoff
    assert "[executor-not-taking]" not in runner.output()
    if says_ended:
        assert queries == 0
    else:
        assert queries >= 1


def test_each_database_gets_its_series_runjob_protocol(qdb, second_db, pg_cluster, procs):
    """queue_job 19.0 takes the database from X-Odoo-Database, 17.0/18.0
    from ?db=; the token travels in a header, never in the query string."""
    if qdb.version != "17":
        pytest.skip("the versions are set below")
    for db, version in ((qdb, "17.0.1.5.4"), (second_db, "19.0.2.4.0.1")):
        db.execute("ALTER TABLE ir_module_module ADD COLUMN IF NOT EXISTS latest_version varchar")
        db.execute("UPDATE ir_module_module SET latest_version = %s WHERE name = 'queue_job'",
                   (version,))
    answerer = Answerer(200)
    procs_ = start_runner(pg_cluster, [qdb.name, second_db.name], answerer.port, "--channels",
                          "root:2", "--wakeup", "poll", "--poll-max", "0.2")
    procs.append(procs_)
    try:
        wait_until(lambda: registered_runners(qdb) == 1 and registered_runners(second_db) == 1)
        qdb.insert_jobs(1)
        second_db.insert_jobs(1)
        wait_until(lambda: len({p for p, _h in answerer.requests}) >= 2, message="both dispatched")
        seen = {}
        for path, headers in answerer.requests:
            assert "token" not in path.split("?", 1)[1]  # out of access logs
            assert len(headers["X-Queue-Job-Token"]) == 32
            seen["header" if "X-Odoo-Database" in headers else "db"] = (path, headers)
        path, headers = seen["db"]
        assert f"db={qdb.name}" in path and "X-Odoo-Database" not in headers
        path, headers = seen["header"]
        assert "db=" not in path and headers["X-Odoo-Database"] == second_db.name
    finally:
        answerer.close()
    # against an executor that, like Odoo 19, reads only the header: the 19.0
    # database runs, the 17.0 one is told apart with its cause
    procs_.terminate()
    executor = start_executor(pg_cluster, "--db-from", "header")
    procs.append(executor)
    for db in (qdb, second_db):
        db.execute("UPDATE queue_job SET state = 'pending', claim_token = NULL, claimed_by = NULL")
    runner = start_runner(pg_cluster, [qdb.name, second_db.name], executor.port, "--channels",
                          "root:2", "--wakeup", "poll", "--poll-max", "0.2")
    procs.append(runner)
    wait_until(lambda: second_db.states() == {"done": 1}, message="the 19.0 database's job")
    wait_until(lambda: "http-404" in runner.output(), message="the 17.0 database's 404")
    assert "X-Odoo-Database" in runner.output() and qdb.states() == {"pending": 1}


def test_a_reload_applies_channel_edits_at_once_and_is_no_hint(qdb, pg_cluster, procs):
    """queue_job 18.0 sends NOTIFY queue_job, 'reload' when a channel record
    changes: the limits apply at once (not at the 30 s refresh); a reload
    is not a job hint, nor a stock trigger's uuid a reload."""
    if qdb.version != "18":
        pytest.skip("queue_job_channel limits are 18.0's")
    metrics_port = free_port()
    executor = start_executor(pg_cluster)
    procs.append(executor)
    runner = start_runner(pg_cluster, [qdb.name], executor.port, "--channels", "root:4",
                          "--metrics-port", str(metrics_port))
    procs.append(runner)
    wait_until(lambda: registered_runners(qdb) == 1)

    def wakeups(cause):
        return _metric(metrics_port, "queue_job_runner_wakeups_total", cause=cause)

    hints = wakeups("hint")
    conn = qdb.connect()
    with conn.cursor() as cr:  # as the ORM's write does: the edit and its NOTIFY, one transaction
        cr.execute("BEGIN; UPDATE queue_job_channel SET capacity = 2 WHERE complete_name = 'root'; "
                   "NOTIFY queue_job, 'reload'; COMMIT")
    wait_until(lambda: "name='root', capacity=2" in _limits_line(runner),
               timeout=10, message="the edit applied (the refresh is 30 s)")
    assert wakeups("reload") >= 1 and wakeups("hint") == hints
    with conn.cursor() as cr:
        cr.execute("NOTIFY queue_job, '8c2e0c5e-0000-4000-8000-000000000000'")  # a stock trigger's
    mark, timers = runner.output().count("[limits]"), wakeups("timer")
    wait_until(lambda: wakeups("timer") > timers + 1, message="timer wake-ups after it")
    assert runner.output().count("[limits]") == mark and wakeups("hint") == hints
    conn.close()


def _limits_line(runner):
    lines = [line for line in runner.output().splitlines() if "[limits]" in line]
    return lines[-1] if lines else ""


def test_a_channel_with_its_own_executor_waits_alone_when_that_one_is_down(qdb, pg_cluster, procs):
    """--channel-executors root.long=...: long jobs go to their own Odoo;
    while it is down only root.long waits (one line naming it), the other
    channels keep running, and nothing is lost."""
    if qdb.version != "17":
        pytest.skip("the same on every series")
    executor = start_executor(pg_cluster)
    procs.append(executor)
    long_port = free_port()  # the long jobs' Odoo, down for now
    runner = start_runner(pg_cluster, [qdb.name], executor.port, "--channels",
                          "root:2,root.long:1:isolated", "--channel-executors",
                          f"root.long=http://127.0.0.1:{long_port}", "--wakeup", "poll",
                          "--poll-max", "0.2")
    procs.append(runner)
    wait_until(lambda: registered_runners(qdb) == 1)
    long_jobs = qdb.insert_jobs(5, channel="root.long")
    qdb.insert_jobs(100, channel="root", method_name="sleep_ms", args="[5]")
    wait_until(lambda: qdb.scalar("SELECT count(*) FROM queue_job WHERE channel = 'root' "
                                  "AND state = 'done'") == 100, timeout=60, message="root's jobs")
    lines = [line for line in runner.output().splitlines() if "[executor-not-taking]" in line]
    assert len(lines) == 1 and f"executor http://127.0.0.1:{long_port} " in lines[0], lines
    assert qdb.scalar("SELECT count(*) FROM queue_job WHERE id = ANY(%s) AND state <> 'done'",
                      (long_jobs,)) == 5
    procs.append(start_executor(pg_cluster, port=long_port))  # the long jobs' Odoo comes up
    wait_until(lambda: qdb.states() == {"done": 105}, timeout=60, message="the long jobs")
    assert f"executor http://127.0.0.1:{long_port} takes jobs again" in runner.output()
    # each ran where it was sent: the long jobs on the second executor
    pids = dict(qdb.execute("SELECT q.channel, array_agg(DISTINCT e.executor_pid) FROM queue_job q "
                            "JOIN jobrunner_execution e ON e.job_id = q.id GROUP BY 1"))
    assert len(pids["root.long"]) == 1 and pids["root.long"] != pids["root"]

