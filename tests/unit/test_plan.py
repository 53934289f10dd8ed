"""The claim planner, pure: buckets, the per-group retry backoff, and the
channel-name rule (plan.py's doctests run here too)."""

import doctest

from jobrunner import limits, plan
from jobrunner.channels import ChannelTree
from jobrunner.claim import ClaimedJob


def test_doctests():
    assert doctest.testmod(plan).failed == 0


def planner(channels, rows=None):
    tree = ChannelTree(channels)
    return plan.ClaimPlanner(tree, limits.Limits(limits.merge(limits.from_tree(tree), rows or {})))


def job(channel, id_=1):
    return ClaimedJob(id_, f"u{id_}", channel, 10, None, "t")


def test_lockfree_buckets_close_every_group_and_keep_its_capacity():
    p = planner("root:4,root.lim:2:global,root.free:3")
    running = p.tree.count_running([p.tree.bucket_of("root.free")])
    buckets, left = p.lockfree_buckets(running)
    by_name = {b.name: b for b in buckets}
    assert left == 3  # root:4 with one running
    assert by_name["root.lim"].lim == 0  # a group: claimed under its lock only
    assert by_name["root.free"].lim == 2


def test_group_buckets_take_the_least_of_node_and_global_free_capacity():
    p = planner("root:10,root.lim:5:global")
    members = p.limits.members("root.lim")
    frees, wake = plan.global_frees(members, [(4, False, False, -1)])  # 4 running across runners
    assert frees == {"root.lim": 1} and wake is None
    buckets = {b.name: b for b in p.group_buckets("root.lim", p.tree.count_running([]), frees)}
    assert buckets["root.lim"].lim == 1 and buckets["root"].lim == 0  # only the group's jobs


def test_an_empty_group_claim_backs_off_and_a_job_ending_in_it_clears_the_backoff():
    p = planner("root:4,root.seq:1:sequential")
    assert p.groups_due(100.0) == ["root.seq"]
    until = p.after_round(["root.seq"], {"root.seq": (0, None)}, 100.0)
    assert 0 < until <= plan.GROUP_RETRY[0]
    assert p.groups_due(100.0) == []  # not locked again at once
    assert p.groups_due(100.0 + plan.GROUP_RETRY[0]) == ["root.seq"]
    p.after_round(None, {"root.seq": (0, None)}, 101.0)
    p.job_ended("seq")  # "seq" is "root.seq": its group has a free slot now
    assert p.groups_due(101.0) == ["root.seq"]


def test_a_throttle_wakes_the_group_when_it_reopens():
    p = planner("root:4,root.t:4:throttle=3")
    members = p.limits.members("root.t")
    marks, wake = plan.throttle_reopens(members, [job("root.t", 7), job("root.t", 8)], None)
    assert marks == [("root.t", 7)] and wake == 3
    assert p.after_round(["root.t"], {"root.t": (0, 2.5)}, 50.0) == 2.5


def test_paused_groups_are_never_due():
    p = planner("root:4", {"root.p": limits.Limit("root.p", paused=True)})
    assert p.limits.groups == ["root.p"] and p.groups_due(0.0) == []


def test_an_isolated_channel_counts_against_itself_only():
    """root.long:2:isolated: its jobs take none of root's capacity, and a
    full root leaves it its own; its subchannels count against it."""
    tree = ChannelTree("root:2,root.long:2:isolated,root.long.edi:1")
    planner = plan.ClaimPlanner(tree, limits.Limits())
    root, long_, edi = (tree.bucket_of(c) for c in ("root", "root.long", "root.long.edi"))
    assert tree.total_capacity == 4 and tree.root_capacity == 2
    running = tree.count_running([root, root])  # root full
    assert planner.free(running) == 2
    buckets = {b.name: b for b in planner.lockfree_buckets(running)[0]}
    assert buckets["root"].lim == 0 and buckets["root.long"].lim == 2
    assert buckets["root.long.edi"].lim == 1 and buckets["root.long.edi"].anc == (2, 1)
    running = tree.count_running([long_, edi])  # the long channel full
    assert running[0] == 0 and planner.free(running) == 2  # root untouched
    buckets = {b.name: b for b in planner.lockfree_buckets(running)[0]}
    assert buckets["root"].lim == 2 and buckets["root.long"].lim == 0


def test_isolated_combines_with_the_cross_runner_options():
    tree = ChannelTree("root:4,root.long:1:isolated:sequential,root.edi:3:isolated:global,"
                       "root.sync:1:isolated:throttle=5")
    by_name = limits.from_tree(tree)
    assert by_name["root.long"].sequential and by_name["root.edi"].capacity == 3
    assert by_name["root.sync"].throttle == 5
    assert tree.total_capacity == 4 + 1 + 3 + 1
