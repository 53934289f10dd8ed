-- Waiting for a job to end (jobrunner/wait.py).

-- name: job_outcome
-- One check, one autocommit statement: no transaction or snapshot is held
-- between checks.
SELECT state, result, exc_name, exc_message, date_done FROM queue_job WHERE uuid = %(uuid)s;

-- name: listen_ended
LISTEN queue_job_skiplocked_ended;

-- name: ended_notify
-- "Job ended" hint: sent by the executor after the job's own commit, from
-- outside that transaction (the commit path of job writes stays free of
-- NOTIFY). Payload: the job's uuid. As hint_notify: autocommit only, and
-- its commit does not wait for the WAL flush (the job's own commit did; this
-- one would cost every job a third fsync on Odoo's worker, before its answer).
SELECT pg_notify('queue_job_skiplocked_ended', %(uuid)s), set_config('synchronous_commit', 'off', true);
