-- The runner registry and liveness: a runner is alive while it holds its
-- advisory lock ({lock:runner}, id); no heartbeat writes.

-- name: runner_next_id
SELECT nextval(pg_get_serial_sequence('queue_job_runner', 'id'));

-- name: runner_lock
-- Held for the life of the control connection: this is the liveness proof.
-- Taken before the row exists, so a visible row always has a live holder
-- or a dead one, never a not-yet-started one.
SELECT pg_advisory_lock({lock:runner}, %(id)s);

-- name: runner_xact_lock
-- The same proof in poll mode, held by a transaction the control connection
-- keeps open (works through a transaction-pooling PgBouncer).
SELECT pg_advisory_xact_lock({lock:runner}, %(id)s);

-- name: runner_try_lock
-- After a reconnect: keep our id if our previous connection's lock is gone
-- (a cut connection's backend may hold it until its keepalives expire).
SELECT pg_try_advisory_lock({lock:runner}, %(id)s);

-- name: runner_try_xact_lock
SELECT pg_try_advisory_xact_lock({lock:runner}, %(id)s);

-- name: runner_insert
-- After a reconnect the process keeps its id: its row may still be there
-- (no other runner saw our lock free yet), or gone (recovered meanwhile).
INSERT INTO queue_job_runner (id, host, pid, version, channels, executor, executor_workers)
VALUES (%(id)s, %(host)s, %(pid)s, %(version)s, %(channels)s, %(executor)s, %(executor_workers)s)
ON CONFLICT (id) DO UPDATE
SET host = EXCLUDED.host, pid = EXCLUDED.pid, version = EXCLUDED.version,
    channels = EXCLUDED.channels, executor = EXCLUDED.executor,
    executor_workers = EXCLUDED.executor_workers;

-- name: runner_delete
DELETE FROM queue_job_runner WHERE id = %(id)s;

-- name: listen
-- Our hints, and queue_job 18.0's channel edits ('reload' on its own
-- channel; with the flag on nothing else is sent there).
LISTEN queue_job_skiplocked;
LISTEN queue_job

-- name: hint_notify
-- A wake-up hint (or the start-up probe's payload), autocommit only, never
-- inside a transaction that writes jobs. A NOTIFY's transaction gets an xid
-- and so a commit record; its commit does not wait for the WAL flush (a
-- notification is not durable anyway, and listeners get it at commit): no
-- fsync per hint beside the commits of the jobs.
SELECT pg_notify('queue_job_skiplocked', %(payload)s), set_config('synchronous_commit', 'off', true);
