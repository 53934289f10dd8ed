"""Waiting for a job to end (jobrunner.wait): by uuid, with a timeout, on a
"job ended" hint or, without one, on its own backoff; every waiter of a
process shares two connections."""

import threading
import time

from jobrunner import wait


def _uuids(db, ids):
    return dict(db.execute("SELECT id, uuid FROM queue_job WHERE id = ANY(%s)", (ids,)))


def _end(db, job_id, state="done", hint=True):
    db.execute("UPDATE queue_job SET state = %s, result = 'r', date_done = now() AT TIME ZONE 'utc', "
               "exc_name = CASE WHEN %s = 'failed' THEN 'ValueError' END, "
               "exc_message = CASE WHEN %s = 'failed' THEN 'boom' END WHERE id = %s",
               (state, state, state, job_id))
    if hint:
        with db.conn.cursor() as cr:
            wait.notify_ended(cr, db.scalar("SELECT uuid FROM queue_job WHERE id = %s", (job_id,)))


def test_a_wait_returns_the_outcome_at_once_the_state_at_timeout_and_none_if_unknown(qdb):
    [done, failed, pending] = qdb.insert_jobs(3)
    _end(qdb, done, hint=False)
    _end(qdb, failed, "failed", hint=False)
    uuids = _uuids(qdb, [done, failed, pending])
    waiters = wait.Waiters(qdb.conninfo, qdb.name)
    out = waiters.wait(uuids[done], timeout=30)
    assert (out.state, out.result, out.ended) == ("done", "r", True) and out.date_done
    out = waiters.wait(uuids[failed], timeout=30)
    assert (out.state, out.exc_name, out.exc_message) == ("failed", "ValueError", "boom")
    t0 = time.monotonic()
    out = waiters.wait(uuids[pending], timeout=0.5)
    assert out.state == "pending" and not out.ended and time.monotonic() - t0 >= 0.5
    assert waiters.wait("no-such-uuid", timeout=5) is None


def test_two_hundred_waits_share_two_connections_and_end_on_the_hint(qdb):
    ids = qdb.insert_jobs(200)
    uuids = _uuids(qdb, ids)
    waiters = wait.Waiters(qdb.conninfo, qdb.name)
    results, start = {}, threading.Barrier(201)

    def waiter(job_id):
        start.wait()
        results[job_id] = waiters.wait(uuids[job_id], timeout=120)

    threads = [threading.Thread(target=waiter, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    start.wait()

    def connections():
        return qdb.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND application_name = 'queue-job-wait'")

    deadline = time.monotonic() + 30
    while connections() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert connections() == 2  # one listening, one checking: not 200
    for job_id in ids:
        _end(qdb, job_id)
    for t in threads:
        t.join(timeout=60)
    assert {r.state for r in results.values()} == {"done"} and len(results) == 200
    assert connections() <= 2


def test_a_lost_hint_still_ends_the_wait(qdb):
    """No hint at all (a pooler that drops it, poll-only waiters): the
    backoff checks find the end."""
    [job_id] = qdb.insert_jobs(1)
    uuid = _uuids(qdb, [job_id])[job_id]
    waiters = wait.Waiters(qdb.conninfo, qdb.name, listen=False)
    threading.Timer(0.5, _end, (qdb, job_id), {"hint": False}).start()
    out = waiters.wait(uuid, timeout=30)
    assert out.state == "done"


def test_a_wait_holds_no_transaction_between_checks(qdb):
    [job_id] = qdb.insert_jobs(1)
    uuid = _uuids(qdb, [job_id])[job_id]
    waiters = wait.Waiters(qdb.conninfo, qdb.name)
    t = threading.Thread(target=waiters.wait, args=(uuid, 3))
    t.start()
    time.sleep(1)  # an observation window while the wait runs
    held = qdb.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                      "AND application_name = 'queue-job-wait' AND (xact_start IS NOT NULL "
                      "OR backend_xmin IS NOT NULL) AND state <> 'active'")
    t.join()
    assert held == 0
