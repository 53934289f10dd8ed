-- Periodic jobs (queue_job_periodic, schema 4): what runners read to build
-- their timers, and the fire of one tick. Named queries: see jobrunner/queries.py.

-- name: periodic_definitions
-- The active definitions and each one's latest decided tick, read at start
-- and at each refresh (never between fires); the database's clock comes
-- along, so every runner names ticks on the same clock.
SELECT p.id, p.name, NULLIF(p.interval_seconds, 0), p.cron, p.time_zone, p.start,
       p.job_template IS NOT NULL,
       (SELECT max(t.tick) FROM queue_job_periodic_tick t WHERE t.periodic_id = p.id),
       now() AT TIME ZONE 'utc'
FROM queue_job_periodic p
WHERE p.active
ORDER BY p.id;

-- name: periodic_fire
-- Decide one tick of one definition, in ONE statement (several runners send
-- it for the same tick at about the same time):
-- * the tick row's primary key makes one of them win; the others' inserts
--   collide on it and do nothing (ON CONFLICT, not read-then-write);
-- * nothing happens if a later-or-equal tick is decided already (a late
--   runner never fires an older tick), nor if the definition is gone,
--   inactive, or no longer has the schedule the runner computed the tick
--   with (`changed`: the runner re-reads the definitions);
-- * overlap: if the latest tick's job is not terminal and the definition
--   does not allow overlap, the tick is recorded as skipped, naming that
--   job; a job that no longer exists counts as ended;
-- * fired: a copy of job_template becomes a pending queue_job row (every
--   series' column set: keys of columns a series lacks are ignored, columns
--   the template lacks are NULL), with the definition's channel, priority
--   and max_retries;
-- * older tick rows of the definition go: only the latest is kept.
-- Returns outcome (fired, skipped, taken, changed, gone), the job uuid
-- (created, or the running one for a skip) and the previous decided tick.
WITH def AS (
    SELECT p.id, p.allow_overlap, p.job_template,
           jsonb_strip_nulls(jsonb_build_object(
               'channel', NULLIF(p.channel, ''), 'priority', p.priority,
               'max_retries', p.max_retries)) AS overrides,
           (NULLIF(p.interval_seconds, 0) IS NOT DISTINCT FROM %(interval_seconds)s::int4
            AND p.cron IS NOT DISTINCT FROM %(cron)s::varchar
            AND p.time_zone IS NOT DISTINCT FROM %(time_zone)s::varchar
            AND p.start IS NOT DISTINCT FROM %(start)s::timestamp) AS same
    FROM queue_job_periodic p
    WHERE p.id = %(periodic_id)s AND p.active AND p.job_template IS NOT NULL
),
last AS (
    SELECT t.tick, t.job_uuid,
           j.state IS NOT NULL AND j.state NOT IN ('done', 'cancelled', 'failed') AS running
    FROM queue_job_periodic_tick t
    LEFT JOIN queue_job j ON j.uuid = t.job_uuid
    WHERE t.periodic_id = %(periodic_id)s
    ORDER BY t.tick DESC
    LIMIT 1
),
decision AS (
    SELECT d.id, d.job_template, d.overrides, l.tick AS last_tick,
           CASE WHEN l.running AND NOT COALESCE(d.allow_overlap, false) THEN l.job_uuid END
               AS running_uuid
    FROM def d
    LEFT JOIN last l ON true
    WHERE d.same AND (l.tick IS NULL OR l.tick < %(tick)s::timestamp)
),
won AS (
    INSERT INTO queue_job_periodic_tick (periodic_id, tick, skipped, job_uuid, runner_id)
    SELECT id, %(tick)s::timestamp, running_uuid IS NOT NULL,
           COALESCE(running_uuid, gen_random_uuid()::varchar), %(runner_id)s
    FROM decision
    ON CONFLICT DO NOTHING
    RETURNING skipped, job_uuid
),
job AS (
    INSERT INTO queue_job
    SELECT (jsonb_populate_record(NULL::queue_job,
        d.job_template || d.overrides || jsonb_build_object(
            'id', nextval(pg_get_serial_sequence('queue_job', 'id')),
            'uuid', w.job_uuid, 'state', 'pending', 'retry', 0, 'eta', NULL,
            'date_created', now() AT TIME ZONE 'utc', 'date_enqueued', NULL,
            'date_started', NULL, 'date_done', NULL, 'date_cancelled', NULL,
            'exc_name', NULL, 'exc_message', NULL, 'exc_info', NULL, 'result', NULL,
            'worker_pid', NULL, 'claimed_by', NULL, 'claim_token', NULL,
            'create_date', now() AT TIME ZONE 'utc', 'write_date', now() AT TIME ZONE 'utc')
    )).*
    FROM won w, decision d
    WHERE NOT w.skipped
    RETURNING uuid
),
pruned AS (
    DELETE FROM queue_job_periodic_tick t
    USING won
    WHERE t.periodic_id = %(periodic_id)s AND t.tick < %(tick)s::timestamp
)
SELECT CASE WHEN NOT EXISTS (SELECT FROM def) THEN 'gone'
            WHEN NOT (SELECT same FROM def) THEN 'changed'
            WHEN NOT EXISTS (SELECT FROM won) THEN 'taken'
            WHEN (SELECT skipped FROM won) THEN 'skipped'
            ELSE 'fired' END,
       (SELECT job_uuid FROM won),
       (SELECT last_tick FROM decision);

-- name: status_periodic
-- queue-job-runner status: every definition, its latest decided tick and
-- that tick's job (created, or the running one a skipped tick names).
SELECT p.id, p.name, COALESCE(p.active, false), NULLIF(p.interval_seconds, 0), p.cron, p.time_zone,
       p.start, t.tick, t.skipped, t.job_uuid, j.state
FROM queue_job_periodic p
LEFT JOIN LATERAL (SELECT * FROM queue_job_periodic_tick t WHERE t.periodic_id = p.id
                   ORDER BY t.tick DESC LIMIT 1) t ON true
LEFT JOIN queue_job j ON j.uuid = t.job_uuid
ORDER BY p.id;
