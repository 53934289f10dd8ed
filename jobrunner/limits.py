"""Channel limits that hold across every runner of a database: global
capacity, sequential, throttle, paused (OCA semantics), enforced at claim time.

Where a channel's limits come from (one precedence):
1. the runner's channel string, for a channel it gives a cross-runner option:
   ``sub:3:global`` (capacity 3 across all runners), ``sub:1:sequential``
   (always across runners), ``sub:1:throttle=5`` (seconds between starts,
   across runners). Every runner of a database must carry the same options;
2. otherwise the channel's ``queue_job_channel`` row where the schema has the
   columns (OCA 18.0: ``capacity``, ``sequential``, ``throttle``, ``paused``).
``paused`` always comes from the row. Plain ``sub:2`` stays node capacity.

A limited *group* is a top-most limited channel with its subtree. Claims in a
group are serialized by a transaction-scoped advisory lock on the group, then
counted and taken in that transaction (group_lock, group_state, claim): two
runners can never both see the same free slot (counting without the lock is
the race of pgqueuer #761). Channels outside every group keep the lock-free
claim, whose buckets close the groups' subtrees.
"""

from dataclasses import dataclass, replace

from psycopg2.errors import LockNotAvailable

from . import claim as claim_mod, queries
from .channels import build_buckets
from .claim import Bucket, normalize_channel

REFRESH = 30.0  # seconds between reads of queue_job_channel limits


@dataclass(frozen=True)
class Limit:
    name: str  # full channel name
    capacity: int | None = None  # across all runners; sequential means 1
    sequential: bool = False
    throttle: int = 0  # seconds between starts
    paused: bool = False

    def __bool__(self):
        return bool(self.capacity or self.sequential or self.throttle or self.paused)


def within(name, top):
    """Is channel `name` in the subtree of `top` (full names)?"""
    return top == "root" or name == top or name.startswith(top + ".")


def from_tree(tree):
    """Cross-runner limits given by a runner's channel string."""
    out = {}
    for ch in tree.channels:
        glob = bool(ch.options.get("global"))
        lim = Limit(ch.name, 1 if ch.sequential else (ch.capacity or None) if glob else None,
                    ch.sequential, ch.throttle)
        if lim or glob:
            out[ch.name] = lim
    return out


def from_rows(rows):
    """Limits of queue_job_channel rows (complete_name, capacity, sequential,
    throttle, paused)."""
    return {normalize_channel(name): Limit(normalize_channel(name), 1 if seq else (cap or None),
                                           bool(seq), int(thr or 0), bool(paused))
            for name, cap, seq, thr, paused in rows}


def merge(string_limits, row_limits):
    out = dict(row_limits)
    for name, lim in string_limits.items():
        out[name] = replace(lim, paused=row_limits.get(name, Limit(name)).paused)
    return {name: lim for name, lim in out.items() if lim}


def read_rows(cr):
    """queue_job_channel limits, or None on a schema without them (17.0)."""
    cr.execute(queries.get("channel_limits_supported"))
    if not cr.fetchone()[0]:
        return None
    cr.execute(queries.get("channel_limits"))
    return from_rows(cr.fetchall())


class Limits:
    def __init__(self, by_name=None):
        self.by_name = dict(by_name or {})
        names = sorted(self.by_name)
        self.groups = [n for n in names if not any(o != n and within(n, o) for o in names)]
        # a paused group top claims nothing: do not even lock it
        self.claimable = [g for g in self.groups if not self.by_name[g].paused]

    def __bool__(self):
        return bool(self.by_name)

    def group_of(self, name):
        return next((g for g in self.groups if within(name, g)), None)

    def members(self, group):
        return [self.by_name[n] for n in sorted(self.by_name) if within(n, group)]

    def lockfree(self, buckets):
        """The node's buckets with every group's subtree closed."""
        present = {b.name for b in buckets}
        out = [replace(b, lim=0) if self.group_of(b.name) else b for b in buckets]
        return out + [Bucket(g, 0) for g in self.groups if g not in present]

    def group_buckets(self, tree, running, group, global_frees):
        """Buckets of a claim inside `group`: the node's capacities (tree,
        running) and the group's global free capacities together."""
        names = [ch.name for ch in tree.channels]
        names += [lim.name for lim in self.members(group) if lim.name not in names]
        node = dict(zip((ch.name for ch in tree.channels), tree.node_frees(running)))
        frees = [_least(node.get(n), global_frees.get(n)) for n in names]
        return build_buckets(names, frees, lim_zero=lambda n: not within(n, group))


def _least(a, b):
    return b if a is None else a if b is None else min(a, b)


def _like_prefix(name):
    escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + ".%"


def global_frees(members, rows):
    """Free capacity across runners of each limited channel of a group (None:
    unlimited) from group_state rows; and seconds until a throttle reopens."""
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


def claim_group(conn, runner_id, limits, group, tree, running, limit):
    """Claim up to `limit` jobs of one limited group in one short transaction
    on an autocommit connection: lock the group, count, claim, mark throttles.

    Returns (jobs, seconds until a throttle of the group reopens or None)."""
    members = limits.members(group)
    with conn.cursor() as cr:
        # A runner that vanishes inside this transaction (network cut) must
        # not hold the group for long: the server ends its session after 10 s
        # idle in transaction, and the others give up waiting after 5 s.
        cr.execute("BEGIN; SET LOCAL lock_timeout = '5s'; "
                   "SET LOCAL idle_in_transaction_session_timeout = '10s'")
        try:
            try:
                cr.execute(queries.get("group_lock"), {"group": group})
            except LockNotAvailable:
                cr.execute("ROLLBACK")
                return [], None  # held elsewhere for long: try again later
            cr.execute(queries.get("group_state"), {
                "names": [m.name for m in members],
                "shorts": ["" if m.name == "root" else m.name[5:] for m in members],
                "pats": [_like_prefix(m.name) for m in members],
                "spats": [_like_prefix(m.name[5:]) if m.name != "root" else "" for m in members],
                "seqs": [m.sequential for m in members],
                "thrs": [m.throttle for m in members],
            })
            frees, wake = global_frees(members, cr.fetchall())
            buckets = limits.group_buckets(tree, running, group, frees)
            jobs, _eta = claim_mod.claim(cr, runner_id, buckets, limit)
            for lim in members:
                if lim.throttle:
                    taken = [j for j in jobs if within(normalize_channel(j.channel), lim.name)]
                    if taken:
                        cr.execute(queries.get("throttle_mark"), {"name": lim.name, "job": taken[0].id})
                        wake = lim.throttle if wake is None else min(wake, lim.throttle)
            cr.execute("COMMIT")
        except BaseException:
            if not conn.closed:
                try:
                    cr.execute("ROLLBACK")
                except Exception:  # the connection broke: its transaction is gone anyway
                    pass
            raise
    return jobs, wake


@dataclass
class Round:
    jobs: list
    next_eta: object = None  # earliest future eta (naive UTC), when the lock-free claim ran
    pending: list | None = None  # groups with pending jobs; None: not looked at
    tried: dict = None  # group -> (jobs claimed, seconds until its throttle reopens or None)


def claim_round(conn, runner_id, tree, running, limits, free, try_groups):
    """One runner's claim for `free` node capacity: first the limited groups
    in `try_groups` (bounded by their own limits, so a big unlimited backlog
    cannot starve them), then the lock-free claim for what is left, which
    also tells which groups have pending jobs.

    running: tree.count_running() of the jobs this node runs (not modified)."""
    result = Round([], tried={})
    running = list(running)
    for group in try_groups:
        if free - len(result.jobs) <= 0:
            break
        got, wake = claim_group(conn, runner_id, limits, group, tree, running, free - len(result.jobs))
        tree.count_running((tree.bucket_of(j.channel) for j in got), running)
        result.jobs += got
        result.tried[group] = (len(got), wake)
    if free - len(result.jobs) <= 0:
        return result
    buckets, left = tree.buckets(running)
    with conn.cursor() as cr:
        more, result.next_eta, result.pending = claim_mod.claim_full(
            cr, runner_id, limits.lockfree(buckets) if limits else buckets, left,
            limits.claimable)
    result.jobs += more
    return result
