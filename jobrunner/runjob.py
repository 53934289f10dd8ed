"""The token check of /queue_job/runjob, shared by the reference executor
and the Odoo addon's controller."""

from . import queries


def refusal(cr, uuid, token):
    """Why a request with `token` may not start job `uuid`; None when the job
    is enqueued with this very token and only a passing row lock (another
    runner's claim scan) kept the acquisition from it: try again."""
    cr.execute(queries.get("runjob_claim_of"), {"uuid": uuid, "token": token})
    row = cr.fetchone()
    if row is None:
        return "it does not exist"
    state, _claimed, same_token = row
    if state != "enqueued":
        return f"it is {state}"
    if not same_token:
        if not token:
            return "the request has no token but the job was claimed with one"
        return "the request's token is not the job's current claim"
    return None
