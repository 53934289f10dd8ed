"""The SKIP LOCKED claim engine against the real queue_job schema (17.0, 18.0 and 19.0)."""

import json
from collections import Counter
from datetime import datetime, timedelta

import pytest

from jobrunner import claim, prepared, queries

from jobrunner.testing.fixtures import concurrent_claims


def utcnow():
    return datetime.utcnow()


@pytest.mark.parametrize("batch", [1, 10, 100])
def test_eight_processes_claim_every_job_exactly_once(qdb, batch):
    qdb.insert_jobs(20000, channel="root")
    qdb.insert_jobs(500, channel="root.sub")  # unconfigured subchannel falls under root
    results, _ = concurrent_claims(qdb, processes=8, batch=batch)

    assert [r["errors"] for r in results] == [[]] * 8
    all_ids = [i for r in results for i in r["ids"]]
    counts = Counter(all_ids)
    assert len(all_ids) == 20500 and len(counts) == 20500  # no job twice, none missed
    assert max(s for r in results for s in r["sizes"]) <= batch  # never more than asked
    # the database agrees: every job enqueued, owned by the runner that got it
    rows = qdb.execute("SELECT id, claimed_by, claim_token FROM queue_job")
    owner = {i: r["runner"] for r in results for i in r["ids"]}
    assert all(state == "enqueued" for (state,) in qdb.execute("SELECT state FROM queue_job"))
    assert all(owner[i] == by for i, by, _ in rows)
    assert len({tok for _, _, tok in rows}) == 20500  # a fresh token per claimed job
    # several processes really took part
    assert sum(1 for r in results if r["ids"]) >= 2


@pytest.mark.usefixtures("claim_form")
def test_claim_follows_oca_order_and_skips_unclaimable(qdb):
    now = utcnow()
    base = now - timedelta(hours=1)
    ids = {}
    ids["p5_old"] = qdb.insert_jobs(1, priority=5, date_created=base)[0]
    ids["p5_new"] = qdb.insert_jobs(1, priority=5, date_created=base + timedelta(minutes=1))[0]
    ids["p1"] = qdb.insert_jobs(1, priority=1, date_created=base + timedelta(minutes=30))[0]
    ids["p10"] = qdb.insert_jobs(1, priority=10, date_created=base - timedelta(hours=5))[0]
    # same priority and date_created: id decides
    same = qdb.insert_jobs(2, priority=7, date_created=base)
    # an eta in the past competes on priority only (OCA drops the eta once due)
    ids["due_eta"] = qdb.insert_jobs(1, priority=6, date_created=base + timedelta(minutes=50),
                                     eta=now - timedelta(minutes=1))[0]
    never = []
    never += qdb.insert_jobs(1, priority=0, eta=now + timedelta(hours=1))
    for state in ("wait_dependencies", "started", "done", "failed", "cancelled", "enqueued"):
        never += qdb.insert_jobs(1, priority=0, state=state)

    got = []
    with qdb.conn.cursor() as cr:
        while True:
            jobs, next_eta = claim.claim_channels(cr, 1, 1)
            if not jobs:
                break
            got.append(jobs[0].id)
    expected = [ids["p1"], ids["p5_old"], ids["p5_new"], ids["due_eta"], same[0], same[1], ids["p10"]]
    assert got == expected
    assert not set(got) & set(never)
    # the future eta is reported so an idle runner knows when to wake
    assert next_eta is not None and next_eta > now
    states = dict(qdb.execute("SELECT id, state FROM queue_job WHERE id = ANY(%s)", (never,)))
    assert sorted(states.values()) == sorted(
        ["pending", "wait_dependencies", "started", "done", "failed", "cancelled", "enqueued"])


@pytest.mark.usefixtures("claim_form")
def test_batch_returns_jobs_in_oca_order(qdb):
    base = utcnow() - timedelta(hours=1)
    low = qdb.insert_jobs(5, priority=20, date_created=base, spread_seconds=1)
    high = qdb.insert_jobs(5, priority=1, date_created=base + timedelta(minutes=5), spread_seconds=1)
    with qdb.conn.cursor() as cr:
        jobs, _ = claim.claim_channels(cr, 1, 7)
    assert [j.id for j in jobs] == high + low[:2]


@pytest.mark.usefixtures("claim_form")
def test_claim_is_limited_to_the_given_channels(qdb):
    a = qdb.insert_jobs(3, channel="root.a")
    a_sub = qdb.insert_jobs(2, channel="root.a.x")  # unconfigured: falls under root.a
    qdb.insert_jobs(3, channel="root.b")
    qdb.insert_jobs(3, channel="root")
    with qdb.conn.cursor() as cr:
        jobs, _ = claim.claim_channels(cr, 1, 100, channels=["a"])  # "a" means "root.a"
    assert sorted(j.id for j in jobs) == sorted(a + a_sub)


@pytest.mark.usefixtures("claim_form")
def test_many_channels_in_one_claim_never_exceed_the_batch(qdb):
    # many channels make the planner join many lateral scans: the trap of
    # re-executed locking subqueries would show as more rows than asked
    for i in range(30):
        qdb.insert_jobs(20, channel=f"root.c{i}")
    with qdb.conn.cursor() as cr:
        for limit in (1, 7, 50, 500):
            jobs, _ = claim.claim_channels(cr, 1, limit)
            assert len(jobs) == limit
    assert qdb.scalar("SELECT count(*) FROM queue_job WHERE state = 'enqueued'") == 1 + 7 + 50 + 500


@pytest.mark.usefixtures("claim_form")
def test_null_and_short_channel_names_are_root(qdb):
    null_ch = qdb.insert_jobs(1, channel=None)
    empty = qdb.insert_jobs(1, channel="")
    short = qdb.insert_jobs(1, channel="sub")  # OCA: "sub" is "root.sub"
    with qdb.conn.cursor() as cr:
        jobs, _ = claim.claim_channels(cr, 1, 10, channels=["root"])
        assert sorted(j.id for j in jobs) == sorted(null_ch + empty + short)


def test_release_hands_back_only_unstarted_own_claims(qdb):
    qdb.insert_jobs(4)
    with qdb.conn.cursor() as cr:
        jobs, _ = claim.claim_channels(cr, 7, 4)
        ids = [j.id for j in jobs]
        qdb.execute("UPDATE queue_job SET state='started' WHERE id = %s", (ids[0],))
        stale = [claim.ClaimedJob(j.id, j.uuid, j.channel, j.priority, j.date_created, "old-token")
                 for j in jobs]
        assert claim.release(cr, stale) == []  # another claim's token: not ours
        assert sorted(claim.release(cr, jobs)) == sorted(ids[1:])
    rows = qdb.execute("SELECT state, claimed_by, claim_token, date_enqueued FROM queue_job "
                       "WHERE id = ANY(%s)", (ids[1:],))
    assert rows == [("pending", None, None, None)] * 3


def _plan_nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def test_claim_plan_uses_partial_index_and_touches_no_done_row(qdb, claim_form):
    """Also as the prepared claim's generic plan, made without the
    parameters' values."""
    # 200k done rows: a seq scan would read ~5,000 blocks, the bound below is 3,000
    qdb.insert_jobs(200000, state="done", date_created=utcnow() - timedelta(days=1))
    pending = qdb.insert_jobs(1000, channel="root")
    qdb.execute("VACUUM ANALYZE queue_job")
    sql = queries.get("claim")
    params = {"names": ["root"], "lims": [100], "frees": [100], "ancs": ["1"], "limit": 100,
              "runner": 1, "key": "k", "groups": ["root.limited"]}
    with qdb.conn.cursor() as cr:
        if claim_form == "prepared":
            prepare, sql = queries.prepared("claim", prepared.CLAIM_PARAMS)
            cr.execute(prepare, params)
        cr.execute("BEGIN")
        cr.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
        plan = cr.fetchone()[0][0]["Plan"]
        cr.execute("ROLLBACK")
    scans = [n for n in _plan_nodes(plan)
             if n.get("Relation Name") == "queue_job" and "Scan" in n["Node Type"]]
    assert scans, json.dumps(plan)[:2000]
    assert not [n for n in scans if n["Node Type"] in ("Seq Scan", "Bitmap Heap Scan")], scans
    used = {n.get("Index Name") for n in scans}
    assert used <= {"queue_job_skiplocked_pending_index", "queue_job_skiplocked_eta_index",
                    "queue_job_pkey"}, used
    # rows the scans looked at: the pending ones at most, never the done ones
    examined = sum((n.get("Actual Rows", 0) + n.get("Rows Removed by Filter", 0)) * n.get("Actual Loops", 1)
                   for n in scans)
    assert examined < 2 * len(pending), examined
    assert plan["Shared Hit Blocks"] + plan.get("Shared Read Blocks", 0) < 3000


def test_a_claims_commit_skips_the_wal_flush_of_its_own_transaction_only(qdb):
    """The claim sets synchronous_commit off for its transaction (one fsync
    less per job; test_faults' crash test shows nothing is lost by it); the
    session's setting, and so any other write on it, stays as it was."""
    qdb.insert_jobs(2)
    conn = qdb.connect()
    try:
        with conn.cursor() as cr:
            cr.execute("SET synchronous_commit = on")
            cr.execute("BEGIN")  # as in a group claim: a transaction around it
            jobs, _ = claim.claim_channels(cr, None, 1)
            cr.execute("SHOW synchronous_commit")
            assert len(jobs) == 1 and cr.fetchone()[0] == "off"
            cr.execute("COMMIT")
            jobs, _ = claim.claim_channels(cr, None, 1)  # autocommit: its own transaction
            cr.execute("SHOW synchronous_commit")
            assert len(jobs) == 1 and cr.fetchone()[0] == "on"
    finally:
        conn.close()
