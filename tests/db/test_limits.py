"""Channel limits across runners: the serialized group claim, one claim at a
time, as two runners (two connections) make it. Multi-process runs are in
test_limits_runners.py."""

import time
from datetime import datetime, timedelta

import pytest

from jobrunner import claim, limits
from jobrunner.channels import ChannelTree
from jobrunner.plan import ClaimPlanner


def utcnow():
    return datetime.utcnow()


class Node:
    """One runner's view: its channel string, its claims, on its own
    connection, planned by the runner's own ClaimPlanner."""

    def __init__(self, db, channels, runner_id=1):
        self.db, self.runner_id = db, runner_id
        tree = ChannelTree(channels)
        self.conn = db.connect()
        with self.conn.cursor() as cr:
            db_rows = limits.read_rows(cr) or {}
        self.planner = ClaimPlanner(tree, limits.Limits(limits.merge(limits.from_tree(tree), db_rows)))

    def claim(self):
        # what this node still runs, as the runner's in-flight check knows it
        tree = self.planner.tree
        running = tree.count_running(tree.bucket_of(ch) for (ch,) in self.db.execute(
            "SELECT channel FROM queue_job WHERE claimed_by = %s AND state IN ('enqueued', 'started')",
            (self.runner_id,)))
        now = time.monotonic()
        result = claim.claim_round(self.conn, self.runner_id, self.planner, running,
                                   self.planner.free(running), self.planner.pending_groups)
        self.planner.after_round(result.pending, result.tried, now)
        return [j.id for j in result.jobs]

    def close(self):
        self.conn.close()


@pytest.fixture
def nodes(qdb):
    made = []

    def make(channels, runner_id=1):
        node = Node(qdb, channels, runner_id)
        made.append(node)
        return node

    yield make
    for node in made:
        node.close()


def finish(db, ids, state="done"):
    db.execute("UPDATE queue_job SET state = %s, date_started = now() AT TIME ZONE 'utc', "
               "date_done = now() AT TIME ZONE 'utc' WHERE id = ANY(%s)", (state, list(ids)))


def test_global_capacity_holds_across_two_runners(qdb, nodes):
    a = nodes("root:10,root.lim:3:global", 1)
    b = nodes("root:10,root.lim:3:global", 2)
    lim = qdb.insert_jobs(20, channel="root.lim", spread_seconds=1)
    free = qdb.insert_jobs(20, channel="root.free", spread_seconds=1)
    got_a = a.claim()
    got_b = b.claim()
    claimed_lim = [i for i in got_a + got_b if i in lim]
    assert len(claimed_lim) == 3  # node capacity would allow 20
    assert set(got_a + got_b) - set(lim) <= set(free)
    assert len([i for i in got_a + got_b if i in free]) == 17  # the sibling is not held back
    finish(qdb, claimed_lim[:2])
    assert len([i for i in a.claim() if i in lim]) == 2  # two freed slots, whoever claims


def test_sequential_follows_oca_order_and_waits_for_an_earlier_eta(qdb, nodes):
    # OCA channels.py doctest of a sequential queue: j6 (due), j7 (eta 20), j8 (due)
    a = nodes("root:4,root.seq:1:sequential", 1)
    b = nodes("root:4,root.seq:1:sequential", 2)
    base = utcnow() - timedelta(hours=1)
    [j6] = qdb.insert_jobs(1, channel="root.seq", priority=1, date_created=base + timedelta(seconds=6))
    [j7] = qdb.insert_jobs(1, channel="root.seq", priority=1, date_created=base + timedelta(seconds=7),
                           eta=utcnow() + timedelta(seconds=1.5))
    [j8] = qdb.insert_jobs(1, channel="root.seq", priority=1, date_created=base + timedelta(seconds=8))
    assert a.claim() == [j6]
    assert b.claim() == []  # capacity 1 across runners
    finish(qdb, [j6])
    assert b.claim() == []  # j7 ranks before j8: wait for its eta, do not skip it
    assert a.claim() == []
    qdb.execute("UPDATE queue_job SET eta = now() AT TIME ZONE 'utc' - interval '1 second' "
                "WHERE id = %s", (j7,))  # its eta has come
    assert b.claim() == [j7]
    finish(qdb, [j7])
    assert a.claim() == [j8]


def test_a_failed_job_blocks_a_sequential_channel_until_requeued(qdb, nodes):
    a = nodes("root:4,root.seq:1:sequential")
    ids = qdb.insert_jobs(3, channel="root.seq", spread_seconds=1)
    other = qdb.insert_jobs(2, channel="root.other", spread_seconds=1)
    assert a.claim() == ids[:1] + other
    finish(qdb, ids[:1], state="failed")
    finish(qdb, other)
    assert a.claim() == []  # blocked by the failed job
    qdb.execute("UPDATE queue_job SET state = 'pending', date_started = NULL, date_done = NULL "
                "WHERE id = %s", (ids[0],))  # requeued (OCA's requeue wizard)
    assert a.claim() == ids[:1]
    finish(qdb, ids[:1])
    assert a.claim() == ids[1:2]
    finish(qdb, ids[1:2], state="cancelled")  # cancelled, not failed: no block
    assert a.claim() == ids[2:3]


def test_throttle_spaces_starts_across_runners(qdb, nodes):
    # OCA doctest root:4,A:4:throttle=2, with the interval counted from starts
    a = nodes("root:4,root.A:4:throttle=2", 1)
    b = nodes("root:4,root.A:4:throttle=2", 2)
    a1, a2, a3 = qdb.insert_jobs(3, channel="root.A", spread_seconds=1)
    assert a.claim() == [a1]  # one per interval, though capacity is 4
    assert b.claim() == []  # a1 has not started yet
    qdb.execute("UPDATE queue_job SET state = 'started', date_started = now() AT TIME ZONE 'utc' "
                "WHERE id = %s", (a1,))
    assert b.claim() == []  # started just now: 2 s to go
    qdb.execute("UPDATE queue_job SET date_started = now() AT TIME ZONE 'utc' - interval '2.1 seconds' "
                "WHERE id = %s", (a1,))
    assert b.claim() == [a2]  # the first still runs: capacity allows it
    assert a.claim() == []


def test_string_precedence_paused_rows_and_18_schema(qdb, nodes):
    if qdb.version != "18":
        pytest.skip("queue_job_channel limit columns are 18.0's")
    qdb.execute("INSERT INTO queue_job_channel (name, complete_name, removal_interval, capacity, paused) "
                "VALUES ('cap', 'root.cap', 30, 2, false), ('stop', 'root.stop', 30, NULL, true), "
                "('both', 'root.both', 30, 1, false)")
    cap = qdb.insert_jobs(5, channel="root.cap", spread_seconds=1)
    stop = qdb.insert_jobs(5, channel="root.stop.sub", spread_seconds=1)
    both = qdb.insert_jobs(5, channel="root.both", spread_seconds=1)
    # the string gives root.both a global capacity of 3: it wins over the row's 1
    a = nodes("root:20,root.both:3:global")
    got = a.claim()
    assert sorted(i for i in got if i in cap) == cap[:2]  # the row's global capacity
    assert not set(got) & set(stop)  # paused: nothing of it or its subchannels
    assert sorted(i for i in got if i in both) == both[:3]


def test_channel_limit_rows_only_where_the_schema_has_them(qdb):
    # 18.0's queue_job_channel has the limit columns; 17.0 and 19.0 have none
    with qdb.conn.cursor() as cr:
        rows = limits.read_rows(cr)
    assert (rows is not None) == (qdb.version == "18")


def test_channel_names_are_data_not_sql(qdb, nodes):
    name = "root.x'; DROP TABLE queue_job; --"
    a = nodes("root:4,root.x_y:1:global")
    ids = qdb.insert_jobs(2, channel=name)
    lookalike = qdb.insert_jobs(2, channel="root.xzy.sub")  # '_' is not a LIKE wildcard here
    got = a.claim()
    assert set(ids) | set(lookalike) == set(got)  # neither is under root.x_y
    assert qdb.scalar("SELECT count(*) FROM queue_job") == 4
