"""The wake-up hint sent after an enqueuing commit (jobrunner.hint.Hinter,
used by the addon in every Odoo process)."""

import json
import subprocess
import sys
import time

import pytest

from jobrunner import config, hint, queries
from jobrunner.errors import ConfigError

from jobrunner.testing.fixtures import wait_until


def _listener(db, channel=hint.CHANNEL):
    conn = db.connect()
    with conn.cursor() as cr:
        cr.execute(f"LISTEN {channel}")
    return conn


def _notifications(conn, channel=hint.CHANNEL):
    conn.poll()
    return [n for n in conn.notifies if n.channel == channel]


@pytest.mark.parametrize("query, params", [("hint_notify", {"payload": ""}),
                                           ("ended_notify", {"uuid": "some-uuid"})])
def test_a_hints_commit_skips_the_wal_flush_of_its_own_transaction_only(qdb, query, params):
    """A NOTIFY's transaction has a commit record; the wake-up and job-ended
    hints commit without waiting for its WAL flush (no fsync per hint, none
    on Odoo's worker after each job), and the hint connection's own setting
    stays as it was for whatever else runs on it."""
    channel = {"hint_notify": hint.CHANNEL, "ended_notify": "queue_job_skiplocked_ended"}[query]
    listener = _listener(qdb, channel)
    conn = qdb.connect()
    try:
        with conn.cursor() as cr:
            cr.execute("SET synchronous_commit = on")
            cr.execute("BEGIN")  # to look at the setting the commit will see
            cr.execute(queries.get(query), params)
            cr.execute("SHOW synchronous_commit")
            assert cr.fetchone()[0] == "off"
            cr.execute("COMMIT")
            cr.execute(queries.get(query), params)  # as sent: autocommit, its own transaction
            cr.execute("SHOW synchronous_commit")
            assert cr.fetchone()[0] == "on"
        wait_until(lambda: len(_notifications(listener, channel)) >= 2, timeout=10,
                   message="both hints delivered")
        assert [n.payload for n in _notifications(listener, channel)] == [next(iter(params.values()))] * 2
    finally:
        conn.close()
        listener.close()


def test_a_process_that_exits_right_after_its_commit_still_hints(qdb):
    # odoo shell, a script, a worker at its request limit: the hint is sent
    # from a daemon thread that dies with the process, unless flushed at exit
    listener = _listener(qdb)
    code = ("import json, sys; from jobrunner.hint import Hinter; "
            "Hinter(json.loads(sys.argv[1])).hint(sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, json.dumps(qdb.conninfo), qdb.name],
                   check=True, timeout=60)
    assert wait_until(lambda: _notifications(listener), timeout=10, message="the hint")
    listener.close()


def test_the_first_hint_goes_at_once_the_next_ones_of_its_window_in_one(qdb):
    listener = _listener(qdb)
    window = 1.5
    hinter = hint.Hinter(qdb.conninfo, window=window)
    # the host's window (shared by its processes) is quiet: an earlier
    # test's hint to this database may be less than a window old
    gate = hint.HostGate(qdb.conninfo, qdb.name, window)
    wait_until(lambda: time.time() - gate.last() > window, timeout=window + 5,
               message="a quiet window of the host")
    for burst in range(2):
        started = time.monotonic()
        hinter.hint(qdb.name)
        got = wait_until(lambda: _notifications(listener), timeout=10, message="the first hint")
        assert time.monotonic() - started < window / 2  # not held for the window
        assert len(got) == 1
        listener.notifies.clear()
        for _ in range(200):  # commits after that one was sent, within its window
            hinter.hint(qdb.name)
        # one NOTIFY at the window's end for the 200, none lost
        got = wait_until(lambda: _notifications(listener), timeout=window + 10,
                         message="the window's one hint")
        assert len(got) == 1 and time.monotonic() - started >= window
        listener.notifies.clear()
        # after that the window of the trailing hint passes quietly (nothing
        # pending): the next burst starts at once again
        wait_until(lambda: not hinter._sending and time.monotonic() - started > 2 * window + 0.1
                   and time.time() - gate.last() > window, timeout=3 * window + 10,
                   message="a quiet window")
    assert hinter.sent == 4
    listener.close()


def test_hint_window_setting():
    assert config.odoo_setting("hint_window", {}, {}) == hint.WINDOW == 0.05
    assert config.odoo_setting("hint_window", {"ODOO_QUEUE_JOB_HINT_WINDOW": "0.2"},
                               {"hint_window": "1"}) == 0.2
    assert config.odoo_setting("hint_window", {}, {"hint_window": "0"}) == 0.0
    for env, conf, message in (
            ({"ODOO_QUEUE_JOB_HINT_WINDOW": "fast"}, {},
             "invalid ODOO_QUEUE_JOB_HINT_WINDOW value 'fast': expected a number"),
            ({}, {"hint_window": "-1"}, "invalid [queue_job] hint_window value '-1': must be >= 0")):
        with pytest.raises(ConfigError) as err:
            config.odoo_setting("hint_window", env, conf)
        assert str(err.value) == message


def test_send_now_reuses_the_hint_connection_and_replaces_one_the_server_closed(qdb):
    # the runjob controller's job-ended NOTIFY: one statement per job on the
    # process's hint connection, not an Odoo cursor (BEGIN, COMMIT, DISCARD ALL)
    listener = qdb.connect()
    with listener.cursor() as cr:
        cr.execute("LISTEN queue_job_skiplocked_ended")
    hinter = hint.Hinter(qdb.conninfo)
    pids = []

    def ended(uuid):
        def statement(cr):
            cr.execute("SELECT pg_backend_pid()")
            pids.append(cr.fetchone()[0])
            cr.execute("SELECT pg_notify('queue_job_skiplocked_ended', %s)", (uuid,))
        return statement

    hinter.send_now(qdb.name, ended("u1"))
    hinter.send_now(qdb.name, ended("u2"))
    assert pids[0] == pids[1]  # the same connection, kept
    qdb.execute("SELECT pg_terminate_backend(%s)", (pids[0],))
    hinter.send_now(qdb.name, ended("u3"))  # replaced once, not lost
    assert pids[2] != pids[0]

    def payloads():
        listener.poll()
        return [n.payload for n in listener.notifies]
    wait_until(lambda: len(payloads()) >= 3, timeout=10, message="three ended hints")
    assert payloads() == ["u1", "u2", "u3"]
    listener.close()


ENQUEUER = """
import json, sys, time
from jobrunner.hint import Hinter
hinter = Hinter(json.loads(sys.argv[1]), window=float(sys.argv[3]))
print("ready", flush=True)
sys.stdin.readline()  # all start together
end = time.monotonic() + float(sys.argv[4])
while time.monotonic() < end:  # a commit every 10 ms, each followed by its hint
    asked = time.time()  # taken before hint(): the NOTIFY serving it is sent later still
    hinter.hint(sys.argv[2])
    time.sleep(0.01)
print(json.dumps({"sent": hinter.sent, "skipped": hinter.skipped, "asked": asked}), flush=True)
time.sleep(2 * float(sys.argv[3]))  # its window's end, then exit (atexit flushes the rest)
"""


def test_the_processes_of_a_host_share_one_hint_per_window(qdb):
    """Odoo's workers each have a Hinter: together they send about one
    NOTIFY per window to a database, not one each, and the last commit of
    each is still followed by a NOTIFY."""
    listener = _listener(qdb)
    window, seconds, n = 0.5, 3.0, 4
    procs = [subprocess.Popen([sys.executable, "-c", ENQUEUER, json.dumps(qdb.conninfo), qdb.name,
                               str(window), str(seconds)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(n)]
    received = []  # when each NOTIFY arrived
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        while any(p.poll() is None for p in procs):  # until every sender has exited
            received += [time.time()] * len(_notifications(listener))
            listener.notifies.clear()
            time.sleep(0.01)  # the polling period of this listener
        received += [time.time()] * len(_notifications(listener))
        results = [json.loads(p.stdout.read().strip()) for p in procs]
    finally:
        for p in procs:
            p.kill()
    listener.close()
    sent, skipped = sum(r["sent"] for r in results), sum(r["skipped"] for r in results)
    # alone, each process would send one per window: n * (seconds / window + 1) = 28
    assert sent <= seconds / window + 1 + n, results
    assert skipped > 0 and len(received) >= seconds / window - 1  # the cadence went on
    assert max(received) >= max(r["asked"] for r in results)  # the last commits were hinted
