-- OCA's channel naming, defined once for every query: "sub" is "root.sub",
-- NULL and '' are root. Plain SQL functions, IMMUTABLE, so the planner
-- inlines them. (jobrunner/plan.py's normalize_channel is the same rule for
-- the runner's in-memory channel tree; a test holds the two together.)
CREATE OR REPLACE FUNCTION queue_job_skiplocked_channel(channel text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN channel IS NULL OR channel IN ('', 'root') THEN 'root'
                WHEN left(channel, 5) = 'root.' THEN channel
                ELSE 'root.' || channel END
$$;

-- Is a job's channel (as written on the row) in the subtree of `top` (a
-- full name)? A prefix test, not LIKE: '_' and '%' in names are data.
CREATE OR REPLACE FUNCTION queue_job_skiplocked_in_subtree(channel text, top text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT top = 'root'
        OR queue_job_skiplocked_channel(channel) = top
        OR left(queue_job_skiplocked_channel(channel), length(top) + 1) = top || '.'
$$;
