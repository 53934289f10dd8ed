"""Claim planning, pure (no I/O): what one claim round may take.

The SQL side (claim.py) executes a round by asking the planner: the
buckets of the lock-free claim, the buckets of each limited group's
serialized claim from the group's counts, and which groups are due. The
planner also keeps the per-group retry state across rounds: a group whose
claim came back empty is tried again after a backoff (global limits are
usually full: do not lock it on every round), at once when one of our jobs
in it ends, or when its throttle reopens.

>>> normalize_channel("sub"), normalize_channel(None), normalize_channel("root.a")
('root.sub', 'root', 'root.a')
>>> within("root.a.b", "root.a"), within("root.ab", "root.a"), within("root.x", "root")
(True, False, True)
"""

from dataclasses import dataclass, replace

from .backoff import Backoff

GROUP_RETRY = (0.05, 1.0)  # backoff of an empty group claim, seconds


@dataclass(frozen=True)
class Bucket:
    name: str  # full channel name, e.g. "root.sub"
    lim: int  # how many this claim may take under this channel
    free: int | None = None  # own free capacity; None = unlimited
    anc: tuple = ()  # indexes (0-based) of limited buckets on its chain


def normalize_channel(name):
    """OCA's channel naming: "sub" is "root.sub"; empty or None is root.
    (The same rule as the SQL function queue_job_skiplocked_channel.)"""
    if not name or name == "root":
        return "root"
    return name if name.startswith("root.") else "root." + name


def within(name, top):
    """Is channel `name` in the subtree of `top` (full names)?"""
    return top == "root" or name == top or name.startswith(top + ".")


def build_buckets(names, frees, lim_zero=lambda name: False, stops=()):
    """Buckets for channels `names` (full names, "root" among them) with their
    own free capacities (None: unlimited). A bucket may take the least free
    capacity along its chain of ancestors present in `names`, up to the first
    of `stops` (isolated channels); `lim_zero(name)` closes a bucket (its jobs
    are not claimed) while its capacity still counts.

    >>> [(b.name, b.lim, b.anc) for b in build_buckets(["root", "root.a"], [4, 1])]
    [('root', 4, (0,)), ('root.a', 1, (1, 0))]
    >>> [(b.name, b.lim, b.anc) for b in build_buckets(["root", "root.a"], [0, 1], stops=["root.a"])]
    [('root', 0, (0,)), ('root.a', 1, (1,))]
    """
    index = {name: i for i, name in enumerate(names)}
    buckets = []
    for i, name in enumerate(names):
        chain, cur = [], name
        while True:
            if cur in index:
                chain.append(index[cur])
            if "." not in cur or cur in stops:
                break
            cur = cur.rsplit(".", 1)[0]
        limited = tuple(j for j in chain if frees[j] is not None)
        lim = 0 if lim_zero(name) else min(frees[j] for j in limited)  # root is always limited
        buckets.append(Bucket(name, lim, frees[i], limited))
    return buckets


def _least(a, b):
    return b if a is None else a if b is None else min(a, b)


def global_frees(members, rows):
    """Free capacity across runners of each limited channel of a group (None:
    unlimited) from group_state rows (running, failed, eta_wait, thr_wait);
    and seconds until a throttle reopens."""
    frees, wake = {}, None
    for lim, (running, failed, eta_wait, thr_wait) in zip(members, rows):
        free = None if lim.capacity is None else max(0, lim.capacity - running)
        if lim.paused or failed or eta_wait:
            free = 0
        if lim.throttle:
            if thr_wait > 0:  # too recent, or the last one has not started (Infinity)
                free = 0
                if thr_wait != float("inf"):
                    wake = thr_wait if wake is None else min(wake, thr_wait)
            else:
                free = 1 if free is None else min(free, 1)  # one start per interval
        frees[lim.name] = free
    return frees, wake


def throttle_reopens(members, jobs, wake):
    """(channel, first job claimed in it) per throttled member that took a
    job, and the new wake (its interval, if sooner)."""
    marks = []
    for lim in members:
        if lim.throttle:
            taken = [j for j in jobs if within(normalize_channel(j.channel), lim.name)]
            if taken:
                marks.append((lim.name, taken[0].id))
                wake = lim.throttle if wake is None else min(wake, lim.throttle)
    return marks, wake


class ClaimPlanner:
    """One database's claim plan for one runner: its channel tree (node
    capacity) and the database's cross-runner limits (limits.Limits)."""

    def __init__(self, tree, limits):
        self.tree = tree
        self.limits = limits
        self.pending_groups = list(limits.claimable)  # until a claim says which have work
        self.retry = {}  # group -> (monotonic time it is due, Backoff)
        self.closed = set()  # channels whose executor waits: claimed nowhere this round

    def set_limits(self, limits):
        self.limits = limits
        self.pending_groups = list(limits.claimable)

    # -- capacity --------------------------------------------------------------
    def free(self, running):
        """Free node capacity: root's, plus isolated channels' (root is
        always limited, an isolated channel too)."""
        return self.tree.free_total(self.tree.node_frees(running))

    def lockfree_buckets(self, running):
        """Buckets of the lock-free claim, every group's subtree closed; and
        how many it may take."""
        buckets, free = self.tree.buckets(running)
        buckets = [replace(b, lim=0) if b.name in self.closed else b for b in buckets]
        if self.limits:
            present = {b.name for b in buckets}
            buckets = [replace(b, lim=0) if self.limits.group_of(b.name) else b for b in buckets]
            buckets += [Bucket(g, 0) for g in self.limits.groups if g not in present]
        return buckets, free

    def group_buckets(self, group, running, frees):
        """Buckets of a claim inside `group`: the node's capacities and the
        group's free capacities across runners (global_frees) together."""
        tree = self.tree
        names = [ch.name for ch in tree.channels]
        names += [lim.name for lim in self.limits.members(group) if lim.name not in names]
        node = dict(zip((ch.name for ch in tree.channels), tree.node_frees(running)))
        return build_buckets(names, [_least(node.get(n), frees.get(n)) for n in names],
                             lim_zero=lambda n: not within(n, group) or n in self.closed,
                             stops=tree.isolated)

    def add_running(self, running, jobs):
        """Count `jobs` into `running` (in place)."""
        self.tree.count_running((self.tree.bucket_of(j.channel) for j in jobs), running)

    # -- which groups, when ----------------------------------------------------
    def groups_due(self, now):
        return [g for g in self.pending_groups if self.retry.get(g, (0.0, None))[0] <= now]

    def after_round(self, pending, tried, now):
        """Record a round: `pending` (groups with pending jobs, None: not
        looked at) and `tried` {group: (jobs claimed, seconds until its
        throttle reopens or None)}. Returns seconds until a group is due."""
        if pending is not None:
            self.pending_groups = pending
        for group, (got, wake) in tried.items():
            if got:
                self.retry.pop(group, None)
            else:
                backoff = self.retry.get(group, (0.0, None))[1] or Backoff(*GROUP_RETRY)
                self.retry[group] = (now + (wake if wake is not None else backoff.next()), backoff)
        due = [t for g, (t, _b) in self.retry.items() if g in self.pending_groups]
        return max(0.0, min(due) - now) if due else None

    def job_ended(self, channel):
        """One of our jobs ended: its group has a free slot now."""
        self.retry.pop(self.limits.group_of(normalize_channel(channel)), None)
