"""The token check of /queue_job/runjob and its acquisition, shared by the
Odoo addon's controller and the reference executor."""

import time

from . import queries

# The token travels in a header: query strings land in Odoo's access log,
# headers do not. The controller still reads ?token= from older runners.
TOKEN_HEADER = "X-Queue-Job-Token"
# Odoo 19 (queue_job 19.0) takes the database from this header, not ?db=
DB_HEADER = "X-Odoo-Database"
# The answer's "done" (or "failed"): the job ran and that state is committed,
# so the runner frees its slot without asking the database. Any other
# answer, or none (a retried job, stock queue_job, an error page), is
# checked there (the claim's state and token). The executor's word is
# trusted: one saying it of a job it never started would leave that claim
# enqueued until its runner stops (then recovery hands it back); the addon's
# controller and the reference executor say it only after the commit.
STATE_HEADER = "X-Queue-Job-State"
ENDED_STATES = ("done", "failed")

# A lock seen by the SKIP LOCKED acquisition may be only passing (a runner's
# claim scan holds candidate rows for the length of its statement).
ACQUIRE_ATTEMPTS = 25


def refusal(cr, uuid, token):
    """Why a request with `token` may not start job `uuid`; None when the job
    is enqueued with this very token and only a passing row lock (another
    runner's claim scan) kept the acquisition from it: try again."""
    cr.execute(queries.get("runjob_claim_of"), {"uuid": uuid, "token": token})
    row = cr.fetchone()
    if row is None:
        return "it does not exist"
    state, claimed, same_token = row
    if state != "enqueued":
        return f"it is {state}"
    if not claimed:
        return ("it has no claim token (left enqueued by a stock runner?): runners hand it back "
                "to pending and claim it")
    if not token:
        return "the request has no token"
    if not same_token:
        return "the request's token is not the job's current claim"
    return None


def acquire(cr, uuid, token, try_lock, log, attempts=ACQUIRE_ATTEMPTS, **fields):
    """The row try_lock(cr) locked for job `uuid`, or None when the job is not
    ours to run (logged, with `fields`). try_lock is the caller's SKIP LOCKED
    statement, in a fresh transaction of its own: it never waits, so a lock
    that is only passing is retried for a few milliseconds."""
    for attempt in range(attempts):
        row = try_lock(cr)
        if row is not None:
            return row
        reason = refusal(cr, uuid, token)
        if reason:
            log.warning("runjob-refused", "was requested to run the job, but %s: nothing done",
                        reason, uuid=uuid, **fields)
            return None
        time.sleep(0.002 * (attempt + 1))  # ours, locked for an instant
    log.warning("runjob-locked", "was requested to run the job, but it stayed locked: "
                "nothing done", uuid=uuid, **fields)
    return None
