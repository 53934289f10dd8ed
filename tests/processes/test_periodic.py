"""Periodic jobs fired by real runner processes (issue 19): once per tick
across runners, also while they are killed; one catch-up job after all were
down, no backfill; no overlap unless allowed; edits, deactivation and
deletion. Jobs run in the reference executor like any other job.

One series (17.0): the runner's timers do not depend on it, and
tests/db/test_periodic.py runs the fire statement on every series. A
trigger of the test keeps every tick row ever inserted (the runners keep
only the latest), so a tick decided twice would show."""

import re
from datetime import timedelta, timezone

import pytest

from jobrunner.testing.fixtures import (build_db, http_get, registered_runners, start_executor,
                                       start_runner, wait_until)
from jobrunner.testing.pgcluster import Cluster, free_port

from .netproxy import CutProxy

S = timedelta(seconds=1)
ARGS = ("--channels", "root:4", "--recovery-interval", "1")
TICK_LOG = """
CREATE TABLE tick_log (LIKE queue_job_periodic_tick);
CREATE FUNCTION tick_log() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN INSERT INTO tick_log SELECT NEW.*; RETURN NULL; END $$;
CREATE TRIGGER tick_log AFTER INSERT ON queue_job_periodic_tick
    FOR EACH ROW EXECUTE FUNCTION tick_log();
"""


@pytest.fixture
def pdb(pg_cluster, templates, request):
    name = "p_" + re.sub(r"\W", "_", request.node.name)[:40].lower()
    db = build_db(pg_cluster, name, "17", template="qj17_tmpl")
    db.execute("DROP TRIGGER IF EXISTS queue_job_notify ON queue_job")  # the flag is on
    db.execute(TICK_LOG)
    yield db
    db.drop()


@pytest.fixture
def executor(pg_cluster, procs):
    proc = start_executor(pg_cluster)
    procs.append(proc)
    return proc


def db_now(db):
    return db.scalar("SELECT now() AT TIME ZONE 'utc'")


def wait_for_clock(db, at, message):
    wait_until(lambda: db_now(db) >= at, timeout=(at - db_now(db)).total_seconds() + 10,
               interval=0.05, message=message)


def wait_for_tick(db, pid, at, message):
    """Until the definition's tick `at` (or a later one) is decided: the
    clock reaching `at` is not enough, its runner decides it a moment later."""
    wait_until(lambda: any(r[0] >= at for r in decided(db, pid)),
               timeout=(at - db_now(db)).total_seconds() + 10, interval=0.05, message=message)


def next_second(db, ahead=1):
    """A whole second of the database clock, `ahead` seconds from now at least."""
    return (db_now(db) + ahead * S).replace(microsecond=0) + S


def start_runners(cluster, db, executor, n, *extra, procs):
    started = [start_runner(cluster, [db.name], executor.port, *ARGS, *extra) for _ in range(n)]
    procs.extend(started)
    return started


def decided(db, pid):
    """Every tick decided for the definition, in order: (tick, skipped, job_uuid, fired_at)."""
    return db.execute("SELECT tick, skipped, job_uuid, fired_at FROM tick_log "
                      "WHERE periodic_id = %s ORDER BY tick, fired_at", (pid,))


def assert_once_and_consecutive(rows, step=S):
    ticks = [r[0] for r in rows]
    assert len(set(ticks)) == len(ticks), "a tick decided twice"
    gaps = [(a, b) for a, b in zip(ticks, ticks[1:]) if b - a != step]
    assert not gaps, f"ticks missed between {gaps}"


def lines(procs, event):
    return [line for p in procs for line in p.output().splitlines() if f"[{event}]" in line]


def test_three_runners_fire_each_tick_once_calm_then_kill_9_every_3s(pdb, pg_cluster, executor,
                                                                      procs):
    metrics_port = free_port()
    runners = start_runners(pg_cluster, pdb, executor, 2, procs=procs)
    runners += start_runners(pg_cluster, pdb, executor, 1, "--metrics-port", str(metrics_port),
                             procs=procs)
    wait_until(lambda: registered_runners(pdb) == 3, message="3 runners")
    start = next_second(pdb)
    # overlap allowed: a runner killed between its claim and the dispatch leaves
    # its job enqueued until recovery, which would make ticks skip; what this
    # test counts is ticks and their jobs
    pid = pdb.insert_periodic("every second", interval_seconds=1, start=start, allow_overlap=True)
    calm_end = start + 15 * S
    wait_for_tick(pdb, pid, calm_end, "15 calm seconds")
    calm = [r for r in decided(pdb, pid) if r[0] <= calm_end]
    assert calm[0][0] == start  # an interval definition fires at its start
    assert_once_and_consecutive(calm)
    assert len(calm) == 16
    assert all(r[3] - r[0] < S for r in calm)  # each decided within its second
    _, text = http_get(metrics_port, "/metrics")
    due = re.search(rf'queue_job_runner_periodic_next_fire_timestamp_seconds\{{db="{pdb.name}",'
                    rf'periodic="{pid}",name="every second"\}} (\S+)', text)
    assert due and float(due.group(1)) % 1 == 0  # a whole second: the next tick
    assert re.search(r"^queue_job_runner_periodic_fired_total \d+$", text, re.M)
    labels = rf'db="{pdb.name}",periodic="{pid}",name="every second"'
    last = re.search(rf'^queue_job_runner_periodic_last_tick_timestamp_seconds\{{{labels}\}} (\S+)$',
                     text, re.M)
    # the tick decided latest when scraped: the last calm one or a later one
    assert last and float(last.group(1)) >= calm[-1][0].replace(tzinfo=timezone.utc).timestamp()
    assert float(last.group(1)) % 1 == 0
    state = re.search(rf'^queue_job_runner_periodic_last_job\{{{labels},state="(\w+)"\}} 1$',
                      text, re.M)
    assert state and state.group(1) in ("pending", "enqueued", "started", "done"), text

    for k in range(5):  # chaos: a runner kill -9'ed and started again every 3 s
        victim = k % 3
        runners[victim].kill()
        runners[victim] = start_runners(pg_cluster, pdb, executor, 1, procs=procs)[0]
        wait_for_clock(pdb, calm_end + (k + 1) * 3 * S, "the next kill")
    end = calm_end + 15 * S
    wait_for_tick(pdb, pid, end, "the last tick")
    rows = [r for r in decided(pdb, pid) if r[0] <= end]
    assert_once_and_consecutive(rows)  # while any runner lives, no tick is missed
    assert rows[0][0] == start and len(rows) == 31  # 30 s of ticks, both ends included
    assert not any(r[1] for r in rows)
    # one job per tick, the tick's; each runs like any other job
    uuids = {r[2] for r in rows}
    wait_until(lambda: pdb.scalar("SELECT count(*) FROM queue_job WHERE uuid = ANY(%s) "
                                  "AND state = 'done'", (list(uuids),)) == len(uuids),
               timeout=30, message="every periodic job to be done")
    assert pdb.scalar("SELECT count(*) FROM queue_job WHERE date_created <= %s", (end + S,)) \
        == len(rows)
    assert len(lines(procs, "periodic-fired")) >= len(rows) - 5  # a killed runner's last line may be lost


def test_after_all_runners_were_down_10_periods_one_catch_up_job_then_the_cadence(
        pdb, pg_cluster, executor, procs):
    first = start_runners(pg_cluster, pdb, executor, 2, procs=procs)
    wait_until(lambda: registered_runners(pdb) == 2, message="2 runners")
    pid = pdb.insert_periodic("every second", interval_seconds=1, start=next_second(pdb))
    wait_until(lambda: len(decided(pdb, pid)) >= 3, timeout=15, message="3 ticks")
    for runner in first:
        runner.kill()
    last = decided(pdb, pid)[-1][0]
    wait_for_clock(pdb, last + 10.5 * S, "10 periods without runners")
    start_runners(pg_cluster, pdb, executor, 2, procs=procs)
    wait_until(lambda: decided(pdb, pid)[-1][0] >= last + 16 * S, timeout=30,
               message="the cadence to resume")
    after = [r for r in decided(pdb, pid) if r[0] > last]
    catch_up = after[0][0]
    assert catch_up - last >= 10 * S  # 10 periods down: the latest missed tick, or later
    assert_once_and_consecutive(after)  # exactly one job for the missed ticks, then each tick
    assert after[0][3] - catch_up < S  # the latest missed tick, fired at start
    [line] = lines(procs, "periodic-caught-up")  # once, from the runner that decided it
    missed = int((catch_up - last) / S) - 1
    assert f"{missed} tick(s) missed" in line and f"the latest, {catch_up}," in line
    assert pdb.scalar("SELECT count(*) FROM queue_job WHERE date_created > %s AND date_created "
                      "< %s", (last + S, catch_up)) == 0


def test_a_job_slower_than_its_period_never_overlaps_unless_allowed(pdb, pg_cluster, executor,
                                                                   procs):
    start_runners(pg_cluster, pdb, executor, 2, procs=procs)
    wait_until(lambda: registered_runners(pdb) == 2, message="2 runners")
    start = next_second(pdb)
    slow = pdb.insert_periodic("slow", interval_seconds=1, start=start, method_name="sleep",
                               args="[2.5]")
    overlap = pdb.insert_periodic("overlap", interval_seconds=1, start=start, method_name="sleep",
                                  args="[2.5]", allow_overlap=True)
    wait_for_clock(pdb, start + 7 * S, "7 periods")
    end = start + 6 * S
    slow_rows = [r for r in decided(pdb, slow) if r[0] <= end]
    assert_once_and_consecutive(slow_rows)  # every tick decided: a job, or a skip
    fired = [r for r in slow_rows if not r[1]]
    skipped = [r for r in slow_rows if r[1]]
    assert len(fired) >= 2 and len(skipped) >= 4
    for r in skipped:  # each names the job still running then, the latest fired before it
        assert r[2] == [f for f in fired if f[0] < r[0]][-1][2]
    runs = pdb.execute("SELECT date_started, date_done FROM queue_job WHERE uuid = ANY(%s) "
                       "AND date_done IS NOT NULL ORDER BY date_started", ([r[2] for r in fired],))
    assert all(a[1] <= b[0] for a, b in zip(runs, runs[1:])), "two runs of the job at once"
    logged = lines(procs, "periodic-skipped")
    slow_lines = [line for line in logged if f"(#{slow})" in line]
    assert len(slow_lines) == len([r for r in decided(pdb, slow) if r[1]])  # once per tick
    assert all(f"uuid={r[2]}" in " ".join(slow_lines) for r in skipped)
    overlap_rows = [r for r in decided(pdb, overlap) if r[0] <= end]
    assert_once_and_consecutive(overlap_rows)
    assert len(overlap_rows) == 7 and not any(r[1] for r in overlap_rows)  # one job per tick
    wait_until(lambda: pdb.scalar("SELECT count(*) FROM queue_job WHERE uuid = ANY(%s) AND "
                                  "state = 'started'", ([r[2] for r in overlap_rows],)) >= 2,
               timeout=10, message="two runs of the overlapping one at once")


def test_a_cadence_change_applies_from_the_next_fire(pdb, pg_cluster, executor, procs):
    # one runner LISTENs; the other polls and learns the edit only when its
    # fire finds the definition changed
    start_runners(pg_cluster, pdb, executor, 1, procs=procs)
    start_runners(pg_cluster, pdb, executor, 1, "--wakeup", "poll", procs=procs)
    wait_until(lambda: registered_runners(pdb) == 2, message="2 runners")
    start = next_second(pdb)
    pid = pdb.insert_periodic("edited", interval_seconds=1, start=start)
    wait_until(lambda: len(decided(pdb, pid)) >= 3, timeout=15, message="3 ticks")
    edited_at = pdb.scalar("UPDATE queue_job_periodic SET interval_seconds = 3 WHERE id = %s "
                           "RETURNING now() AT TIME ZONE 'utc'", (pid,))
    pdb.notify_periodic()
    wait_for_clock(pdb, edited_at + 7 * S, "two periods of the new cadence")
    rows = decided(pdb, pid)
    before = [r for r in rows if r[3] < edited_at]
    after = [r for r in rows if r[3] > edited_at]
    assert_once_and_consecutive(before)
    assert_once_and_consecutive(after, step=3 * S)
    assert all((r[0] - start) % (3 * S) == timedelta(0) for r in after)  # the new schedule's ticks
    assert after[0][0] - edited_at <= 3 * S  # from its next tick: no pause, no burst
    assert len(after) >= 2 and not lines(procs, "periodic-caught-up")  # an edit is no downtime


def test_a_deactivated_definition_stops_and_resumes_without_backfill(pdb, pg_cluster, executor,
                                                                       procs):
    start_runners(pg_cluster, pdb, executor, 2, procs=procs)
    wait_until(lambda: registered_runners(pdb) == 2, message="2 runners")
    pid = pdb.insert_periodic("toggled", interval_seconds=1, start=next_second(pdb))
    wait_until(lambda: len(decided(pdb, pid)) >= 2, timeout=15, message="2 ticks")
    off_at = pdb.scalar("UPDATE queue_job_periodic SET active = false WHERE id = %s "
                        "RETURNING now() AT TIME ZONE 'utc'", (pid,))
    pdb.notify_periodic()
    wait_for_clock(pdb, off_at + 4 * S, "4 periods off")
    assert not [r for r in decided(pdb, pid) if r[3] > off_at]  # no tick after it
    jobs = pdb.scalar("SELECT count(*) FROM queue_job")
    on_at = pdb.scalar("UPDATE queue_job_periodic SET active = true WHERE id = %s "
                       "RETURNING now() AT TIME ZONE 'utc'", (pid,))
    pdb.notify_periodic()
    wait_until(lambda: [r for r in decided(pdb, pid) if r[3] > on_at], timeout=10,
               message="the first tick after reactivation")
    [back] = [r for r in decided(pdb, pid) if r[3] > on_at][:1]
    assert on_at < back[0] <= on_at + S  # its next tick, not the ones missed while off
    assert pdb.scalar("SELECT count(*) FROM queue_job") == jobs + 1
    assert not lines(procs, "periodic-caught-up")


def test_a_deleted_definition_fires_no_more_and_leaves_its_jobs(pdb, pg_cluster, executor, procs):
    runners = start_runners(pg_cluster, pdb, executor, 2, procs=procs)
    wait_until(lambda: registered_runners(pdb) == 2, message="2 runners")
    pid = pdb.insert_periodic("deleted", interval_seconds=1, start=next_second(pdb))
    wait_until(lambda: len(decided(pdb, pid)) >= 3, timeout=15, message="3 ticks")
    gone_at = pdb.scalar("WITH d AS (DELETE FROM queue_job_periodic WHERE id = %s) "
                         "SELECT now() AT TIME ZONE 'utc'", (pid,))
    pdb.notify_periodic()
    wait_until(lambda: pdb.states() == {"done": len(decided(pdb, pid))}, timeout=15,
               message="its jobs to be done")
    wait_for_clock(pdb, gone_at + 3 * S, "3 periods after the deletion")
    assert not [r for r in decided(pdb, pid) if r[3] > gone_at]
    assert pdb.states() == {"done": len(decided(pdb, pid))}  # its past jobs stay
    assert pdb.scalar("SELECT count(*) FROM queue_job_periodic_tick") == 0  # cascaded
    assert all(r.alive() for r in runners)
    assert "0 periodic job(s) timed" in " ".join(lines(procs, "periodic-loaded"))


def test_ticks_survive_a_network_cut_of_one_runner_and_a_postgresql_restart(procs):
    """Fault tests of the periodic timers, on a cluster of their own (it is
    restarted): while one runner is cut off from PostgreSQL the other fires
    every tick; after a restart both reconnect, rebuild their timers from
    the latest decided tick and go on; no tick is ever decided twice."""
    with Cluster() as cluster:
        db = build_db(cluster, "p_faults", "17", trigger=False)
        db.execute(TICK_LOG)
        proxy = CutProxy(cluster.host, cluster.port)
        try:
            executor = start_executor(cluster)
            procs.append(executor)
            start_runners(cluster, db, executor, 1, "--db-timeout", "5", procs=procs)
            cut = start_runners(cluster, db, executor, 1, "--db-port", str(proxy.port),
                                "--db-timeout", "5", procs=procs)[0]
            wait_until(lambda: registered_runners(db) == 2, message="2 runners")
            start = next_second(db)
            pid = db.insert_periodic("every second", interval_seconds=1, start=start,
                                     allow_overlap=True)
            wait_for_clock(db, start + 3 * S, "3 ticks")
            proxy.cut()
            cut_at = db_now(db)
            wait_for_clock(db, cut_at + 8 * S, "8 s of cut")  # past the cut runner's db_timeout
            proxy.heal()
            healed = [r for r in decided(db, pid) if r[0] <= cut_at + 8 * S]
            assert_once_and_consecutive(healed)  # the other runner fired every tick meanwhile
            assert healed[0][0] == start and healed[-1][0] >= cut_at + 7 * S
            wait_until(lambda: cut.output().count("[connected]") >= 2, timeout=60,
                       message="the cut runner to reconnect")

            before = decided(db, pid)[-1][0]
            db.close()
            cluster.restart()
            restarted = db_now(db)
            wait_until(lambda: decided(db, pid)[-1][0] >= restarted + 5 * S, timeout=60,
                       message="ticks after the restart")
            rows = decided(db, pid)
            ticks = [r[0] for r in rows]
            assert len(set(ticks)) == len(ticks), "a tick decided twice"
            after = [r for r in rows if r[0] > before]
            # the first tick after the restart may be a catch-up of the ones the
            # restart made no runner able to decide; from there, every tick
            assert_once_and_consecutive(after[1:])
            assert cut.alive() and all(p.alive() for p in procs if p is not executor)
            wait_until(lambda: db.scalar("SELECT count(*) FROM queue_job WHERE state <> 'done'")
                       == 0, timeout=30, message="every periodic job to be done")
            assert db.scalar("SELECT count(*) FROM queue_job") == len(rows)
        finally:
            proxy.close()
            db.close()
