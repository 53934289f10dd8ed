-- Channel limits across runners (jobrunner/limits.py, claim.claim_group).

-- name: group_lock
-- Serializes the claims of one limited group (its top-most limited channel)
-- across runners, for the rest of the transaction. Run BEFORE group_state:
-- in READ COMMITTED each statement takes a new snapshot, so the count then
-- sees every claim committed by the previous holder.
SELECT pg_advisory_xact_lock({lock:group}, hashtext(%(group)s));

-- name: group_state
-- Per limited channel of the group (full names, in order), under group_lock:
--   running    enqueued or started jobs in its subtree (all runners),
--   failed     sequential: a failed job in its subtree blocks it (OCA),
--   eta_wait   sequential: the earliest future-eta job ranks before the due
--              head, so the channel waits for it instead of skipping it (OCA),
--   thr_wait   throttle: seconds until the next start may happen (<= 0: now;
--              Infinity: the last claimed job has not started yet: wait for it).
WITH lim AS (
    SELECT l.name, l.seq, l.thr, l.idx
    FROM unnest(%(names)s::text[], %(seqs)s::bool[], %(thrs)s::int[])
         WITH ORDINALITY AS l(name, seq, thr, idx)
)
SELECT
    (SELECT count(*) FROM queue_job q
     WHERE q.state IN ('enqueued', 'started')
       AND queue_job_skiplocked_in_subtree(q.channel, l.name)),
    l.seq AND EXISTS (
        SELECT 1 FROM queue_job q
        WHERE q.state = 'failed'
          AND queue_job_skiplocked_in_subtree(q.channel, l.name)),
    l.seq AND COALESCE((
        SELECT ROW(e.priority, e.date_created, e.id) < ROW(d.priority, d.date_created, d.id)
        FROM (SELECT q.priority, q.date_created, q.id FROM queue_job q
              WHERE q.state = 'pending' AND q.eta > (now() AT TIME ZONE 'utc')
                AND queue_job_skiplocked_in_subtree(q.channel, l.name)
              ORDER BY q.eta, q.priority, q.date_created, q.id LIMIT 1) e,
             (SELECT q.priority, q.date_created, q.id FROM queue_job q
              WHERE q.state = 'pending'
                AND (q.eta IS NULL OR q.eta <= (now() AT TIME ZONE 'utc'))
                AND queue_job_skiplocked_in_subtree(q.channel, l.name)
              ORDER BY q.priority, q.date_created, q.id LIMIT 1) d), false),
    CASE WHEN l.thr > 0 THEN COALESCE((
        SELECT CASE WHEN q.state = 'enqueued' THEN 'Infinity'::float8
                    ELSE extract(epoch FROM COALESCE(q.date_started, s.last_claim_at)
                                 + make_interval(secs => l.thr) - (now() AT TIME ZONE 'utc'))::float8
               END
        FROM queue_job_skiplocked_channel s LEFT JOIN queue_job q ON q.id = s.last_job_id
        WHERE s.name = l.name), -1) END
FROM lim l
ORDER BY l.idx;

-- name: throttle_mark
-- The job just claimed in a throttled channel (same transaction as the claim).
INSERT INTO queue_job_skiplocked_channel (name, last_job_id, last_claim_at)
VALUES (%(name)s, %(job)s, now() AT TIME ZONE 'utc')
ON CONFLICT (name) DO UPDATE
SET last_job_id = EXCLUDED.last_job_id, last_claim_at = EXCLUDED.last_claim_at;

-- name: channel_limits_supported
-- OCA 18.0 keeps per-database channel limits on queue_job_channel.
SELECT count(*) = 4 FROM information_schema.columns
WHERE table_name = 'queue_job_channel' AND table_schema = current_schema()
  AND column_name IN ('capacity', 'sequential', 'throttle', 'paused');

-- name: channel_limits
SELECT complete_name, capacity, sequential, throttle, paused FROM queue_job_channel
WHERE complete_name IS NOT NULL
  AND (capacity > 0 OR sequential OR throttle > 0 OR paused);

