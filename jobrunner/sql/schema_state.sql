-- What a database has: Odoo, queue_job, our schema, the stock trigger.

-- name: odoo_tables_exist
-- Is this an Odoo database with a queue_job table? (checked before reading
-- ir_module_module, which a non-Odoo database does not have)
SELECT to_regclass('ir_module_module') IS NOT NULL
       AND to_regclass('queue_job') IS NOT NULL;

-- name: queue_job_module_installed
SELECT EXISTS (SELECT 1 FROM ir_module_module
               WHERE name = 'queue_job' AND state = 'installed');

-- name: schema_ready
-- Are our schema additions in place? (then: at which version)
SELECT count(*) = 2 AS ready
FROM information_schema.columns
WHERE table_name = 'queue_job' AND column_name IN ('claimed_by', 'claim_token')
  AND table_schema = current_schema()
  AND to_regclass('queue_job_runner') IS NOT NULL
  AND to_regclass('queue_job_skiplocked_channel') IS NOT NULL
  AND to_regclass('queue_job_skiplocked_version') IS NOT NULL;

-- name: stock_trigger_present
SELECT count(*) = 3 FROM information_schema.triggers
WHERE event_object_table = 'queue_job' AND trigger_name = 'queue_job_notify'
  AND event_object_schema = current_schema();

-- name: stock_trigger_drop
-- Flag on: no NOTIFY on the commit path of job writes. (A stock runner also
-- refuses a database without this trigger: a second safety net.)
DROP TRIGGER IF EXISTS queue_job_notify ON queue_job;

-- name: schema_version
SELECT COALESCE(max(version), 0) FROM queue_job_skiplocked_version;

-- name: queue_job_version
-- The installed queue_job's version (17.0.x, 18.0.x, 19.0.x): which runjob
-- protocol its Odoo speaks. Through to_jsonb, so a stand-in table without
-- the column answers NULL instead of failing.
SELECT to_jsonb(m) ->> 'latest_version' FROM ir_module_module m
WHERE m.name = 'queue_job' AND m.state = 'installed';
