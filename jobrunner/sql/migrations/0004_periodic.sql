-- Schema version 4: periodic jobs, defined once and fired by the runners.
--
-- queue_job_periodic is also the table of the addon's queue.job.periodic
-- model: the ORM adds its own columns (create_uid, write_date...) and may
-- have created the table first, so every column is added IF NOT EXISTS with
-- the type the ORM gives that field. The runner reads only these columns.
CREATE TABLE IF NOT EXISTS queue_job_periodic (
    id serial NOT NULL PRIMARY KEY
);
ALTER TABLE queue_job_periodic
    ADD COLUMN IF NOT EXISTS name varchar,
    ADD COLUMN IF NOT EXISTS active bool DEFAULT true,
    -- what to call: kept for people and the addon's checks; the runner
    -- copies job_template, which already names it
    ADD COLUMN IF NOT EXISTS model_name varchar,
    ADD COLUMN IF NOT EXISTS method_name varchar,
    -- the schedule: interval_seconds (ticks at start + k * interval) or a
    -- cron expression evaluated in time_zone (ticks from start on)
    ADD COLUMN IF NOT EXISTS interval_seconds int4,
    ADD COLUMN IF NOT EXISTS cron varchar,
    ADD COLUMN IF NOT EXISTS time_zone varchar,
    ADD COLUMN IF NOT EXISTS start timestamp,  -- UTC, as Odoo stores datetimes
    ADD COLUMN IF NOT EXISTS allow_overlap bool DEFAULT false,
    ADD COLUMN IF NOT EXISTS channel varchar,
    ADD COLUMN IF NOT EXISTS priority int4,
    ADD COLUMN IF NOT EXISTS max_retries int4,
    -- the queue_job row of one fire, as to_jsonb of a row Odoo itself would
    -- write for this call (records, args, kwargs, channel, job_function_id,
    -- user_id, company_id...), written by the addon when the definition is
    -- saved; the runner adds id, uuid, state and dates (sql/periodic.sql)
    ADD COLUMN IF NOT EXISTS job_template jsonb;

-- One row per decided tick: the primary key is what makes a tick fire once
-- across runners that race for it (INSERT ... ON CONFLICT DO NOTHING). Only
-- the latest row of a definition is kept; job_uuid is the job that tick
-- created, or for a skipped tick the job still running that made it skip.
CREATE TABLE IF NOT EXISTS queue_job_periodic_tick (
    periodic_id int4 NOT NULL REFERENCES queue_job_periodic (id) ON DELETE CASCADE,
    tick        timestamp NOT NULL,  -- UTC
    skipped     bool NOT NULL DEFAULT false,
    job_uuid    varchar,
    runner_id   int4,
    fired_at    timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    PRIMARY KEY (periodic_id, tick)
);
