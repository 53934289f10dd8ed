-- Schema version 3: which Odoo a runner dispatches to (host:port, as it
-- sends runjob) and that Odoo's HTTP workers when the runner was told
-- (--executor-workers; the embedded runner: Odoo's workers), so `status`
-- can warn when the runners feeding one Odoo ask more of it than it has.
-- Nullable: rows of older runners, and runners not told, leave them empty.
ALTER TABLE queue_job_runner ADD COLUMN IF NOT EXISTS executor varchar;
ALTER TABLE queue_job_runner ADD COLUMN IF NOT EXISTS executor_workers int4;
