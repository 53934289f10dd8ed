-- Schema version 1: what queue_job_skiplocked added before schema versions
-- existed, so idempotent (a database migrated then has all of it and no
-- version row). Applied by jobrunner/schema.py, see migrations/README.
-- Column types are the ones Odoo's ORM gives the fields the addon declares
-- (Char -> varchar, Integer -> int4, Datetime -> timestamp), so Odoo never
-- tries to convert them.

-- Who holds a claim (a queue_job_runner id) and the fencing token that the
-- runjob request must present. NULL whenever the job is not claimed by us.
ALTER TABLE queue_job ADD COLUMN IF NOT EXISTS claimed_by int4;
ALTER TABLE queue_job ADD COLUMN IF NOT EXISTS claim_token varchar;

-- The claim walks this index: only pending rows are in it, so its cost does
-- not grow with done/failed/cancelled history. COALESCE lets a NULL channel
-- (treated as root, like OCA) be found by the same loose index scan.
CREATE INDEX IF NOT EXISTS queue_job_skiplocked_pending_index
    ON queue_job ((COALESCE(channel, '')), priority, date_created, id)
    WHERE state = 'pending';

-- Next future eta, so an idle runner sleeps until then and no longer.
CREATE INDEX IF NOT EXISTS queue_job_skiplocked_eta_index
    ON queue_job (eta)
    WHERE state = 'pending' AND eta IS NOT NULL;

-- Unstarted claims, for recovery and graceful hand-back. claimed_by stays
-- on finished rows (who ran it), so only enqueued rows are indexed.
CREATE INDEX IF NOT EXISTS queue_job_skiplocked_enqueued_index
    ON queue_job (claimed_by)
    WHERE state = 'enqueued';

-- One row per live runner and database. A runner proves it is alive by
-- holding the session advisory lock ({lock:runner}, id) on its
-- control connection; no heartbeat writes.
CREATE TABLE IF NOT EXISTS queue_job_runner (
    id         serial NOT NULL PRIMARY KEY,
    host       varchar,
    pid        int4,
    started_at timestamp DEFAULT (now() AT TIME ZONE 'utc'),
    version    varchar,
    channels   varchar
);

-- Channel limits across runners (limits.py): jobs running per channel and
-- failed jobs blocking sequential channels are counted under a per-group
-- lock, through these small partial indexes (text_pattern_ops: the subtree
-- of a channel is a LIKE 'name.%' prefix).
CREATE INDEX IF NOT EXISTS queue_job_skiplocked_running_index
    ON queue_job ((COALESCE(channel, '')) text_pattern_ops)
    WHERE state IN ('enqueued', 'started');
CREATE INDEX IF NOT EXISTS queue_job_skiplocked_failed_index
    ON queue_job ((COALESCE(channel, '')) text_pattern_ops)
    WHERE state = 'failed';

-- Throttled channels: the last job claimed in each, read under the group
-- lock to space starts `throttle` seconds apart across runners.
CREATE TABLE IF NOT EXISTS queue_job_skiplocked_channel (
    name          varchar NOT NULL PRIMARY KEY,
    last_job_id   int4,
    last_claim_at timestamp
);
