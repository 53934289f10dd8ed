-- Queries of the addon's queue.job.periodic model (Odoo side of periodic
-- jobs; the runner's own queries are elsewhere).

-- name: periodic_job_template
-- The queue_job row queue_job itself wrote for one call (inside a savepoint
-- the addon rolls back), less what belongs to one run: identity, state,
-- dates and outcome. The runner adds id, uuid, state and dates per fire.
SELECT to_jsonb(q) - ARRAY[
    'id', 'uuid', 'state', 'identity_key', 'graph_uuid',
    'date_created', 'date_enqueued', 'date_started', 'date_done',
    'date_cancelled', 'eta', 'exec_time', 'retry', 'result',
    'exc_name', 'exc_message', 'exc_info', 'worker_pid',
    'claimed_by', 'claim_token', 'create_date', 'write_date'
]
FROM queue_job q
WHERE uuid = %(uuid)s;

-- name: periodic_last_ticks
-- The latest decided tick of each definition (only the latest is kept).
SELECT DISTINCT ON (periodic_id) periodic_id, tick, skipped, job_uuid, fired_at
FROM queue_job_periodic_tick
WHERE periodic_id = ANY(%(ids)s)
ORDER BY periodic_id, tick DESC;

-- name: periodic_interval_unset
-- Odoo writes an unset Integer as 0; the runners read NULL as "no interval"
-- (a cron definition has exactly one of interval_seconds and cron).
UPDATE queue_job_periodic SET interval_seconds = NULL
WHERE id = ANY(%(ids)s) AND interval_seconds = 0;
