"""Channel-aware claims for one runner's node capacity (OCA hierarchy)."""

from datetime import datetime, timedelta

import pytest

from jobrunner import claim
from jobrunner.channels import ChannelTree

pytestmark = pytest.mark.usefixtures("claim_form")  # each test: plain and prepared claim


def claim_tree(db, tree, running_buckets=()):
    """One claim as the runner makes it, given the buckets of jobs in flight."""
    buckets, free = tree.buckets(tree.count_running(running_buckets))
    with db.conn.cursor() as cr:
        jobs, _, _ = claim.claim(cr, 1, buckets, free or 0)
    return jobs


def test_subchannel_capacity_and_root_capacity_both_hold(qdb):
    tree = ChannelTree("root:4,root.sub:2")
    base = datetime.utcnow() - timedelta(hours=1)
    sub = qdb.insert_jobs(10, channel="root.sub", priority=1, date_created=base, spread_seconds=1)
    root = qdb.insert_jobs(10, channel="root", priority=5, date_created=base, spread_seconds=1)
    jobs = claim_tree(qdb, tree)
    # sub's jobs come first in OCA order, but sub may run only 2
    assert [j.id for j in jobs] == sub[:2] + root[:2]


def test_backlog_in_a_full_channel_never_blocks_another(qdb):
    tree = ChannelTree("root:10,root.slow:2,root.fast:3")
    base = datetime.utcnow() - timedelta(hours=1)
    qdb.insert_jobs(50, channel="root.slow", priority=0, date_created=base)
    fast = qdb.insert_jobs(5, channel="root.fast", priority=9, date_created=base + timedelta(minutes=1),
                           spread_seconds=1)
    slow_bucket = tree.bucket_of("root.slow")
    jobs = claim_tree(qdb, tree, running_buckets=[slow_bucket, slow_bucket])  # slow is full
    assert [j.id for j in jobs] == fast[:3]  # fast's capacity, none of the slow backlog


def test_unconfigured_subchannel_uses_its_closest_configured_ancestor(qdb):
    tree = ChannelTree("root:8,root.a:2")
    qdb.insert_jobs(5, channel="root.a.x")  # not configured: falls under root.a
    qdb.insert_jobs(5, channel="a.y")  # "a.y" is "root.a.y"
    jobs = claim_tree(qdb, tree)
    assert len(jobs) == 2
    assert {j.channel for j in jobs} <= {"root.a.x", "a.y"}


def test_intermediate_limited_ancestor_is_enforced(qdb):
    tree = ChannelTree("root:10,root.a:3,root.a.x:2,root.a.y:2")
    qdb.insert_jobs(5, channel="root.a.x")
    qdb.insert_jobs(5, channel="root.a.y")
    qdb.insert_jobs(5, channel="root.b")
    jobs = claim_tree(qdb, tree)
    by = {}
    for j in jobs:
        by[j.channel] = by.get(j.channel, 0) + 1
    assert by.get("root.a.x", 0) + by.get("root.a.y", 0) == 3  # root.a's 3, not 2 + 2
    assert by.get("root.a.x", 0) <= 2 and by.get("root.a.y", 0) <= 2
    assert by["root.b"] == 5 and len(jobs) == 8


def test_a_batch_never_exceeds_free_capacity(qdb):
    tree = ChannelTree("root:5")
    qdb.insert_jobs(20)
    assert len(claim_tree(qdb, tree, running_buckets=[0, 0, 0])) == 2
    assert claim_tree(qdb, tree, running_buckets=[0] * 5) == []


def test_oca_channel_manager_walkthrough(qdb):
    """OCA channels.py doctest (root:4,A:4,B:1) as rows and claims: same order."""
    tree = ChannelTree("root:4,A:4,B:1")
    created = datetime.utcnow() - timedelta(hours=1)
    ids = {}
    for name, channel, priority in [("A1", "A", 10), ("A2", "A", 10), ("A3", "A", 10), ("A4", "A", 10),
                                    ("A5", "A", 10), ("A6", "A", 10), ("B1", "B", 5), ("B2", "B", 5)]:
        ids[name] = qdb.insert_jobs(1, channel=channel, priority=priority, date_created=created)[0]
    name_of = {v: k for k, v in ids.items()}
    running = {}  # name -> bucket: what this runner has in flight

    def step():
        jobs = claim_tree(qdb, tree, running_buckets=list(running.values()))
        for j in jobs:
            running[name_of[j.id]] = tree.bucket_of(j.channel)
        return [name_of[j.id] for j in jobs]

    def done(name):
        qdb.execute("UPDATE queue_job SET state = 'done' WHERE id = %s", (ids[name],))
        del running[name]

    assert step() == ["B1", "A1", "A2", "A3"]
    done("A2")
    assert step() == ["A4"]  # not B2: B has capacity 1
    done("B1")
    assert step() == ["B2"]
    done("A1")
    qdb.execute("UPDATE queue_job SET priority = 5 WHERE id = %s", (ids["A6"],))
    assert step() == ["A6"]


def test_an_isolated_channel_is_claimed_while_root_is_full_and_spares_root(qdb):
    """root.long:2:isolated: long jobs never take root's slots, and root's
    backlog never keeps long jobs from their own."""
    tree = ChannelTree("root:2,root.long:2:isolated")
    base = datetime.utcnow() - timedelta(hours=1)
    root = qdb.insert_jobs(10, channel="root", priority=1, date_created=base, spread_seconds=1)
    long_ = qdb.insert_jobs(5, channel="root.long", priority=9, date_created=base, spread_seconds=1)
    jobs = claim_tree(qdb, tree)
    assert sorted(j.id for j in jobs) == sorted(root[:2] + long_[:2])  # both full, each its own
    root_bucket = tree.bucket_of("root")
    # root full: the long channel still gets its slots
    again = claim_tree(qdb, tree, running_buckets=[root_bucket, root_bucket])
    assert [j.id for j in again] == long_[2:4]
