-- Named queries of the reference executor (jobrunner.testing.executor):
-- test support, not the runtime. Same format as jobrunner/sql/queries.sql.

-- name: executor_acquire
-- The reference executor's acquisition (R18 controller semantics plus the
-- fencing token): start the job only if it is still enqueued with this
-- token; SKIP LOCKED, so a racing duplicate request returns at once. As the
-- addon's controller: flag on (the stock trigger dropped), no request starts
-- a job without its token; flag off (trigger there), stock queue_job's
-- tokenless requests from OCA's runner are served.
WITH j AS (
    SELECT id FROM queue_job
    WHERE uuid = %(uuid)s AND state = 'enqueued'
      AND (claim_token = %(token)s
           OR (claim_token IS NULL AND %(token)s IS NULL
               AND EXISTS (SELECT 1 FROM pg_trigger t
                           WHERE t.tgrelid = 'queue_job'::regclass
                             AND t.tgname = 'queue_job_notify')))
    FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE queue_job q
SET state = 'started', date_started = now() AT TIME ZONE 'utc', worker_pid = %(pid)s
FROM j WHERE q.id = j.id
RETURNING q.id, q.method_name, q.args::text, q.retry, q.max_retries, q.channel, q.claimed_by,
          q.date_enqueued;

-- name: executor_add_lock_row
INSERT INTO queue_job_lock (id, queue_job_id) VALUES (%(id)s, %(id)s)
ON CONFLICT (id) DO NOTHING;

-- name: executor_hold_lock
-- Held by the executing transaction for the whole run: the liveness signal.
SELECT id FROM queue_job_lock
WHERE queue_job_id IN (SELECT id FROM queue_job WHERE id = %(id)s AND state = 'started')
FOR NO KEY UPDATE SKIP LOCKED;

-- name: executor_done
UPDATE queue_job
SET state = 'done', date_done = now() AT TIME ZONE 'utc', retry = %(retry)s,
    exec_time = EXTRACT(EPOCH FROM (now() AT TIME ZONE 'utc') - date_started),
    result = %(result)s, exc_name = NULL, exc_message = NULL, exc_info = NULL
WHERE id = %(id)s;

-- name: executor_postpone
-- RetryableJobError: back to pending with an eta, retry count kept.
UPDATE queue_job
SET state = 'pending', retry = %(retry)s, result = %(result)s,
    eta = (now() AT TIME ZONE 'utc') + make_interval(secs => %(seconds)s),
    date_enqueued = NULL, date_started = NULL, claimed_by = NULL, claim_token = NULL
WHERE id = %(id)s;

-- name: executor_failed
UPDATE queue_job
SET state = 'failed', retry = %(retry)s, exc_name = %(exc_name)s,
    exc_message = %(exc_message)s, exc_info = %(exc_info)s
WHERE id = %(id)s;

-- name: execution_log_create
-- The reference executor's record of every execution (tests, demo): when it
-- began and ended, for which claim. Overlaps and duplicates show here.
SELECT pg_advisory_xact_lock({lock:migration}, 1);  -- executors start together (objid 0 is the schema's)
CREATE TABLE IF NOT EXISTS jobrunner_execution (
    id serial PRIMARY KEY,
    job_id int4 NOT NULL,
    token varchar,
    runner_id int4,
    channel varchar,
    executor_pid int4,
    enqueued_at timestamp,  -- the claim's time (its statement's now(), UTC)
    started_at timestamp NOT NULL DEFAULT clock_timestamp(),
    ended_at timestamp,
    outcome varchar
);
CREATE INDEX IF NOT EXISTS jobrunner_execution_job_id_index ON jobrunner_execution (job_id);

-- name: execution_log_start
INSERT INTO jobrunner_execution (job_id, token, runner_id, channel, executor_pid, enqueued_at)
VALUES (%(id)s, %(token)s, %(runner)s, %(channel)s, %(pid)s, %(enqueued_at)s)
RETURNING id;

-- name: execution_log_end
UPDATE jobrunner_execution SET ended_at = clock_timestamp(), outcome = %(outcome)s
WHERE id = %(log_id)s;
