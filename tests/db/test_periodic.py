"""The fire of a periodic tick (query periodic_fire) on every series' schema:
the job it creates, exactly one winner among racing runners, no older tick
after a later one, overlap skips; and what status shows of definitions.
tests/processes/test_periodic.py runs the timers in real runners."""

import json
import threading
from datetime import datetime, timedelta

from jobrunner import periodic, schedule
from jobrunner.testing.fixtures import status

T0 = datetime(2026, 3, 29, 10, 0, 0)
S = timedelta(seconds=1)


def timer(db, pid):
    [(_, name, key, _, _)] = [r for r in periodic.read(db.conn.cursor())[0] if r[0] == pid]
    return periodic.Timer(pid, name, key, schedule.build(*key), None)


def fire(db, pid, tick, runner_id=1, t=None):
    with db.conn.cursor() as cr:
        return periodic.fire(cr, t or timer(db, pid), tick, runner_id)


def ticks(db, pid):
    return db.execute("SELECT tick, skipped, job_uuid FROM queue_job_periodic_tick "
                      "WHERE periodic_id = %s ORDER BY tick", (pid,))


def test_a_fire_copies_the_template_into_a_pending_job_with_the_definitions_settings(qdb):
    pid = qdb.insert_periodic("nightly", interval_seconds=60, start=T0, channel="root.periodic",
                              priority=3, max_retries=7, method_name="sleep", args="[0.1]")
    outcome, uuid, previous = fire(qdb, pid, T0)
    assert (outcome, previous) == ("fired", None)
    [job] = qdb.execute("SELECT uuid, state, channel, priority, max_retries, retry, method_name, "
                        "args::text, model_name, func_string, date_created IS NOT NULL, "
                        "claimed_by, date_done FROM queue_job")
    assert job[0] == uuid and len(uuid) == 36
    assert job[1:] == ("pending", "root.periodic", 3, 7, 0, "sleep", job[7], "queue.job",
                       "sleep()", True, None, None)
    assert json.loads(job[7]) == [0.1]  # args as the template had them (text or jsonb)
    assert ticks(qdb, pid) == [(T0, False, uuid)]
    # the definition leaves a setting empty: the template's value stays
    other = qdb.insert_periodic("plain", interval_seconds=60, start=T0, priority=None)
    _, uuid2, _ = fire(qdb, other, T0)
    assert qdb.execute("SELECT channel, priority, max_retries FROM queue_job WHERE uuid = %s",
                       (uuid2,)) == [("root", 10, 5)]


def test_a_tick_is_decided_once_and_never_an_older_one_after_a_later(qdb):
    pid = qdb.insert_periodic(interval_seconds=1, start=T0)
    assert fire(qdb, pid, T0)[0] == "fired"
    assert fire(qdb, pid, T0, runner_id=2)[0] == "taken"  # another runner, same tick
    qdb.execute("UPDATE queue_job SET state = 'done'")
    outcome, uuid, previous = fire(qdb, pid, T0 + 3 * S)
    assert (outcome, previous) == ("fired", T0)
    assert ticks(qdb, pid) == [(T0 + 3 * S, False, uuid)]  # only the latest row is kept
    assert fire(qdb, pid, T0 + 2 * S)[0] == "taken"  # a late runner's older tick: nothing
    assert qdb.scalar("SELECT count(*) FROM queue_job") == 2


def test_racing_runners_make_one_job_per_tick(qdb):
    pid = qdb.insert_periodic(interval_seconds=1, start=T0)
    t = timer(qdb, pid)
    conns = [qdb.connect() for _ in range(8)]
    try:
        for k in range(5):
            barrier, outcomes = threading.Barrier(len(conns)), []

            def one(conn, runner_id):
                barrier.wait()
                with conn.cursor() as cr:
                    outcomes.append(periodic.fire(cr, t, T0 + k * S, runner_id)[0])

            threads = [threading.Thread(target=one, args=(c, i)) for i, c in enumerate(conns)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(30)
            assert sorted(outcomes) == ["fired"] + ["taken"] * 7, outcomes
            qdb.execute("UPDATE queue_job SET state = 'done'")
    finally:
        for c in conns:
            c.close()
    assert qdb.scalar("SELECT count(*) FROM queue_job") == 5


def test_overlap_skips_while_the_last_job_runs_unless_allowed(qdb):
    pid = qdb.insert_periodic(interval_seconds=1, start=T0)
    _, first, _ = fire(qdb, pid, T0)
    for state in ("pending", "enqueued", "started", "wait_dependencies"):
        qdb.execute("UPDATE queue_job SET state = %s", (state,))
        tick = T0 + S * (1 + ("pending", "enqueued", "started", "wait_dependencies").index(state))
        assert fire(qdb, pid, tick)[:2] == ("skipped", first)  # names the running job
    assert ticks(qdb, pid) == [(T0 + 4 * S, True, first)]
    qdb.execute("UPDATE queue_job SET state = 'failed'")
    outcome, second, _ = fire(qdb, pid, T0 + 5 * S)
    assert outcome == "fired" and second != first
    qdb.execute("DELETE FROM queue_job WHERE uuid = %s", (second,))  # a missing job has ended
    assert fire(qdb, pid, T0 + 6 * S)[0] == "fired"
    overlap = qdb.insert_periodic("overlap", interval_seconds=1, start=T0, allow_overlap=True)
    assert [fire(qdb, overlap, T0 + k * S)[0] for k in range(3)] == ["fired"] * 3
    assert qdb.scalar("SELECT count(*) FROM queue_job WHERE state = 'pending'") == 4


def test_edited_inactive_or_deleted_definitions_fire_nothing(qdb):
    pid = qdb.insert_periodic(interval_seconds=1, start=T0)
    stale = timer(qdb, pid)
    assert fire(qdb, pid, T0, t=stale)[0] == "fired"
    qdb.execute("UPDATE queue_job SET state = 'done'")
    qdb.execute("UPDATE queue_job_periodic SET interval_seconds = 2")
    assert fire(qdb, pid, T0 + S, t=stale)[0] == "changed"  # a runner that has not re-read yet
    assert fire(qdb, pid, T0 + 2 * S)[0] == "fired"
    qdb.execute("UPDATE queue_job SET state = 'done'")
    qdb.execute("UPDATE queue_job_periodic SET active = false")
    assert fire(qdb, pid, T0 + 4 * S, t=stale)[0] == "gone"
    qdb.execute("UPDATE queue_job_periodic SET active = true")
    qdb.execute("DELETE FROM queue_job_periodic")
    assert fire(qdb, pid, T0 + 4 * S, t=stale)[0] == "gone"
    assert qdb.scalar("SELECT count(*) FROM queue_job_periodic_tick") == 0  # cascaded
    assert qdb.states() == {"done": 2}  # its past jobs stay


def test_status_shows_each_definitions_next_fire_and_last_job(qdb, pg_cluster):
    now = datetime.utcnow().replace(microsecond=0)
    pid = qdb.insert_periodic("hourly sync", interval_seconds=3600, start=now - timedelta(hours=5))
    qdb.insert_periodic("nightly", cron="30 2 * * *", time_zone="Europe/Brussels", start=now)
    _, uuid, _ = fire(qdb, pid, now - timedelta(hours=1))
    [report] = json.loads(status(pg_cluster, qdb, "--json"))
    hourly, nightly = report["periodic"]
    assert hourly["name"] == "hourly sync" and hourly["schedule"] == "every 3600s"
    assert hourly["last_job"] == uuid and hourly["last_state"] == "pending"
    assert hourly["next_fire"] == str(now)  # the tick after the last decided one
    assert nightly["last_job"] is None and nightly["schedule"] == "cron 30 2 * * * (Europe/Brussels)"
    assert nightly["next_fire"] > str(now)
    text = status(pg_cluster, qdb)
    assert "hourly sync" in text and uuid in text and "pending" in text
