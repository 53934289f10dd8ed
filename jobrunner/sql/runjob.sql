-- The token check of /queue_job/runjob (jobrunner/runjob.py).

-- name: runjob_lock
-- Odoo controller, flag on: lock the job only if it is enqueued with this
-- token; SKIP LOCKED, so a duplicate request never waits or conflicts.
-- A job without a token (a stock runner's claim, a row set by hand) is
-- started by no request: recovery hands it back to pending for a claim.
SELECT id FROM queue_job
WHERE uuid = %(uuid)s AND state = 'enqueued'
  AND claim_token IS NOT NULL AND claim_token = %(token)s
FOR UPDATE SKIP LOCKED;

-- name: runjob_claim_of
-- Why a runjob lock failed: the job's state and whether a runner claimed it.
SELECT state, claim_token IS NOT NULL, claim_token IS NOT DISTINCT FROM %(token)s
FROM queue_job WHERE uuid = %(uuid)s;

