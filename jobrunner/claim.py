"""The claim engine: one SKIP LOCKED statement on an autocommit connection.

Buckets describe the channels a claim may take from and how much: see the
`claim` query in sql/queries.sql. Channel trees build them (channels.py);
`claim_channels` builds the simple case of a flat set of channels.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime

from . import queries

DEAD_JOB_GRACE = 10.0  # seconds between `started` commit and the lock row (OCA's)


@dataclass(frozen=True)
class Bucket:
    name: str  # full channel name, e.g. "root.sub"
    lim: int  # how many this claim may take under this channel
    free: int | None = None  # own free capacity; None = unlimited
    anc: tuple = ()  # indexes (0-based) of limited buckets on its chain


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    uuid: str
    channel: str
    priority: int | None
    date_created: datetime | None
    token: str


def claim(cr, runner_id, buckets, limit):
    """Claim up to `limit` due pending jobs; return (jobs in OCA order, next_eta).

    `cr` must be on an autocommit (READ COMMITTED) connection: the statement
    is its own transaction, so row locks last only as long as it runs.
    next_eta is the earliest future eta of a pending job (naive UTC) or None.
    """
    jobs, next_eta, _groups = claim_full(cr, runner_id, buckets, limit)
    return jobs, next_eta


def claim_full(cr, runner_id, buckets, limit, groups=()):
    """claim(), also returning which of `groups` (limited channel groups whose
    buckets are closed here) have pending jobs: (jobs, next_eta, groups)."""
    if limit <= 0 or not buckets:
        return [], None, []
    cr.execute(
        queries.get("claim"),
        {
            "names": [b.name for b in buckets],
            "lims": [max(0, b.lim) for b in buckets],
            "frees": [b.free for b in buckets],
            "ancs": [",".join(str(i + 1) for i in b.anc) for b in buckets],
            "limit": limit,
            "runner": runner_id,
            "token": secrets.token_hex(8),
            "groups": list(groups),
        },
    )
    jobs, next_eta, pending_groups = [], None, []
    for id_, uuid, channel, priority, date_created, token, eta, pending in cr.fetchall():
        if id_ is None:
            next_eta, pending_groups = eta, sorted(pending or ())
        else:
            jobs.append(ClaimedJob(id_, uuid, channel, priority, date_created, token))
    jobs.sort(key=_oca_key)
    return jobs, next_eta, pending_groups


def _oca_key(job):
    # PostgreSQL sorts NULL last in ascending order; do the same.
    return (
        job.priority is None,
        job.priority or 0,
        job.date_created is None,
        job.date_created or datetime.min,
        job.id,
    )


def normalize_channel(name):
    """OCA's channel naming: "sub" is "root.sub"; empty or None is root."""
    if not name or name == "root":
        return "root"
    return name if name.startswith("root.") else "root." + name


def claim_channels(cr, runner_id, limit, channels=("root",)):
    """Claim up to `limit` jobs from a flat set of channels (and their subchannels)."""
    buckets = [Bucket(normalize_channel(c), limit) for c in channels]
    return claim(cr, runner_id, buckets, limit)


def release(cr, jobs):
    """Hand these claims back to pending unless an executor started them.

    Returns the ids released."""
    if not jobs:
        return []
    cr.execute(queries.get("release"),
               {"ids": [j.id for j in jobs], "tokens": [j.token for j in jobs]})
    return [r[0] for r in cr.fetchall()]


def recover(cr, me):
    """One recovery pass (query `recover`) on behalf of runner `me` (0: no
    runner): dead runners' claims back to pending, dead executions
    requeued. Returns (job id or runner id, uuid, why) rows."""
    cr.execute(queries.get("recover"), {"me": me, "grace": DEAD_JOB_GRACE})
    return cr.fetchall()
