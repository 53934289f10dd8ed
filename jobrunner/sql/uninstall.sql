-- What the migrations add and Odoo's uninstall of queue_job_skiplocked does
-- not remove by itself (it drops the columns of the fields the addon
-- declares, claimed_by and claim_token, with their indexes, and the tables
-- of its models, queue_job_runner and queue_job_periodic). Idempotent.
DROP INDEX IF EXISTS queue_job_skiplocked_pending_index;
DROP INDEX IF EXISTS queue_job_skiplocked_eta_index;
DROP INDEX IF EXISTS queue_job_skiplocked_running_index;
DROP INDEX IF EXISTS queue_job_skiplocked_failed_index;
DROP TABLE IF EXISTS queue_job_skiplocked_channel;
DROP TABLE IF EXISTS queue_job_periodic_tick;
DROP FUNCTION IF EXISTS queue_job_skiplocked_in_subtree(text, text);
DROP FUNCTION IF EXISTS queue_job_skiplocked_channel(text);
DROP TABLE IF EXISTS queue_job_skiplocked_version;
