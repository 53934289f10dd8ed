"""Channel limits that hold across every runner of a database: global
capacity, sequential, throttle, paused (OCA semantics), enforced at claim time.

Where a channel's limits come from (one precedence):
1. the runner's channel string, for a channel it gives a cross-runner option:
   ``sub:3:global`` (capacity 3 across all runners), ``sub:1:sequential``
   (always across runners), ``sub:1:throttle=5`` (seconds between starts,
   across runners). Every runner of a database must carry the same options;
2. otherwise the channel's ``queue_job_channel`` row where the schema has the
   columns (OCA 18.0 only: ``capacity``, ``sequential``, ``throttle``, ``paused``).
``paused`` always comes from the row. Plain ``sub:2`` stays node capacity.

A limited *group* is a top-most limited channel with its subtree. Claims in a
group are serialized by a transaction-scoped advisory lock on the group, then
counted and taken in that transaction (claim.claim_group): two runners can
never both see the same free slot (counting without the lock is the race of
pgqueuer #761). Channels outside every group keep the lock-free claim, whose
buckets close the groups' subtrees (plan.ClaimPlanner).
"""

from dataclasses import dataclass, replace

from . import queries
from .plan import normalize_channel, within

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
    """queue_job_channel limits, or None on a schema without them (17.0, 19.0)."""
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
