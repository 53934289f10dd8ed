"""The claim engine, the SQL side: claims on an autocommit connection,
hand-backs, the in-flight check and recovery (sql/claim.sql, sql/limits.sql).

What a round may take is planned by plan.ClaimPlanner; this module only runs
the statements it asks for.
"""

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from psycopg2.errors import LockNotAvailable

from . import db, plan, prepared, queries
from .plan import Bucket, normalize_channel

DEAD_JOB_GRACE = 10.0  # seconds between `started` commit and the lock row (OCA's)
# A runner that vanishes inside a group claim (network cut) must not hold the
# group for long: the server ends its session after 10 s idle in
# transaction, and the others give up waiting after 5 s.
GROUP_TXN = {"lock_timeout": "5s", "idle_in_transaction_session_timeout": "10s"}


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    uuid: str
    channel: str
    priority: int | None
    date_created: datetime | None
    token: str


def claim(cr, runner_id, buckets, limit, groups=()):
    """Claim up to `limit` due pending jobs; return (jobs in OCA order,
    next_eta, which of `groups` have pending jobs).

    `cr` must be on an autocommit (READ COMMITTED) connection, or in a short
    transaction of its own: row locks last only as long as it. next_eta is
    the earliest future eta of a pending job (naive UTC) or None. `groups`:
    limited channel groups whose buckets are closed here.
    """
    if limit <= 0 or not buckets:
        return [], None, []
    form = prepared.plan_of(cr)
    sql = form.statement(cr) if form else queries.get("claim")
    try:
        cr.execute(sql, {
            "names": [b.name for b in buckets],
            "lims": [max(0, b.lim) for b in buckets],
            "frees": [b.free for b in buckets],
            "ancs": [",".join(str(i + 1) for i in b.anc) for b in buckets],
            "limit": limit,
            "runner": runner_id,
            "key": secrets.token_hex(16),  # this round's token key, never stored
            "groups": list(groups),
        })
        rows = cr.fetchall()
    except BaseException:
        if form:
            form.failed()
        raise
    jobs, next_eta, pending_groups = [], None, []
    for id_, uuid, channel, priority, date_created, token, eta, pending in rows:
        if id_ is None:
            next_eta, pending_groups = eta, sorted(pending or ())
        else:
            jobs.append(ClaimedJob(id_, uuid, channel, priority, date_created, token))
    jobs.sort(key=_oca_key)
    if form:
        form.ran(cr, bool(jobs))
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


def claim_channels(cr, runner_id, limit, channels=("root",)):
    """Claim up to `limit` jobs from a flat set of channels (and their
    subchannels); return (jobs, next_eta)."""
    buckets = [Bucket(normalize_channel(c), limit) for c in channels]
    jobs, next_eta, _groups = claim(cr, runner_id, buckets, limit)
    return jobs, next_eta


def claim_group(conn, runner_id, planner, group, running, limit):
    """Claim up to `limit` jobs of one limited group in one short transaction:
    lock the group, count, claim, mark throttles.

    Returns (jobs, seconds until a throttle of the group reopens or None)."""
    members = planner.limits.members(group)
    try:
        with db.transaction(conn, queries.get("group_lock"), {"group": group}, **GROUP_TXN) as cr:
            cr.execute(queries.get("group_state"), {
                "names": [m.name for m in members],
                "seqs": [m.sequential for m in members],
                "thrs": [m.throttle for m in members],
            })
            frees, wake = plan.global_frees(members, cr.fetchall())
            jobs, _eta, _groups = claim(cr, runner_id, planner.group_buckets(group, running, frees),
                                        limit)
            marks, wake = plan.throttle_reopens(members, jobs, wake)
            for name, job_id in marks:
                cr.execute(queries.get("throttle_mark"), {"name": name, "job": job_id})
    except LockNotAvailable:
        return [], None  # held elsewhere for long: try again later
    return jobs, wake


@dataclass
class Round:
    jobs: list = field(default_factory=list)
    next_eta: object = None  # earliest future eta (naive UTC), when the lock-free claim ran
    pending: list | None = None  # groups with pending jobs; None: not looked at
    tried: dict = field(default_factory=dict)  # group -> (jobs claimed, seconds until due or None)


def claim_round(conn, runner_id, planner, running, free, groups):
    """One runner's claim for `free` node capacity: first the limited
    `groups` (bounded by their own limits, so a big unlimited backlog cannot
    starve them), then the lock-free claim for what is left, which also
    tells which groups have pending jobs.

    running: the tree's count of the jobs this node runs (not modified)."""
    result = Round()
    running = list(running)
    for group in groups:
        if free - len(result.jobs) <= 0:
            break
        got, wake = claim_group(conn, runner_id, planner, group, running, free - len(result.jobs))
        planner.add_running(running, got)
        result.jobs += got
        result.tried[group] = (len(got), wake)
    if free - len(result.jobs) <= 0:
        return result
    buckets, left = planner.lockfree_buckets(running)
    with conn.cursor() as cr:
        more, result.next_eta, result.pending = claim(cr, runner_id, buckets,
                                                      min(left, free - len(result.jobs)),
                                                      planner.limits.claimable)
    result.jobs += more
    return result


def release(cr, jobs):
    """Hand these claims back to pending unless an executor started them.

    Returns the ids released."""
    if not jobs:
        return []
    cr.execute(queries.get("release"),
               {"ids": [j.id for j in jobs], "tokens": [j.token for j in jobs]})
    return [r[0] for r in cr.fetchall()]


def states(cr, ids):
    """{job id: (state, claim_token)} of these jobs (missing: deleted)."""
    cr.execute(queries.get("inflight_states"), {"ids": list(ids)})
    return {r[0]: r[1:] for r in cr.fetchall()}


def recover(cr, me, only=None):
    """One recovery pass (query `recover`) on behalf of runner `me` (0: no
    runner): dead runners' claims back to pending, dead executions
    requeued. Returns (job id or runner id, uuid, why) rows. `only`: see
    hand_back."""
    cr.execute(queries.get("recover"), {"me": me, "grace": DEAD_JOB_GRACE, "only": only})
    return cr.fetchall()


def hand_back(cr, runner_id):
    """The recovery pass for one runner, now (the Odoo Runners view's
    button): if it is dead, its unstarted claims go back to pending and its
    registry row goes; nothing else is touched. Returns the ids of the jobs
    handed back, or None if the runner is alive (or no longer registered)."""
    rows = recover(cr, 0, only=runner_id)
    if not any(why == "forgotten runner" for _id, _uuid, why in rows):
        return None
    return [job_id for job_id, _uuid, why in rows if why == "dead runner"]
