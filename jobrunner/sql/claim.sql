-- Claims and what ends them: the claim, hand-back, in-flight check and
-- recovery. Named queries: see jobrunner/queries.py for the format.

-- name: claim
-- Claim due pending jobs, channel-aware, in OCA order, in ONE statement.
-- buckets: the configured channels (full names), each with
--   lim  = how many this claim may take for jobs whose closest configured
--          ancestor is this channel (min free capacity along its chain; 0 = full),
--   free = this channel's own free capacity (NULL = unlimited),
--   anc  = comma-separated 1-based indexes of the limited channels on its
--          chain (itself included), whose free capacity its jobs consume.
-- The locking SELECTs sit in a CTE, which PostgreSQL runs exactly once, so
-- a claim never takes more rows than asked (the `id IN (subquery)` trap).
-- Its commit does not wait for the WAL flush (synchronous_commit off for
-- this transaction only): whatever acts on a claim, the executor's `started`,
-- commits after it and so flushes it too; a claim lost in a crash was never
-- acted on: its job is pending again and its token is refused. One fsync
-- less per job, of the three a dispatched job costs.
WITH RECURSIVE async_commit AS (
    SELECT set_config('synchronous_commit', 'off', true)
),
chans(ch) AS (
    -- loose index scan: the distinct channels that have pending jobs
    (SELECT COALESCE(channel, '') FROM queue_job WHERE state = 'pending'
     ORDER BY COALESCE(channel, '') LIMIT 1)
  UNION ALL
    SELECT (SELECT COALESCE(q.channel, '') FROM queue_job q
            WHERE q.state = 'pending' AND COALESCE(q.channel, '') > c.ch
            ORDER BY COALESCE(q.channel, '') LIMIT 1)
    FROM chans c WHERE c.ch IS NOT NULL
),
buckets AS (
    SELECT b.name, b.lim, b.free, b.anc, b.idx
    FROM unnest(%(names)s::text[], %(lims)s::int[], %(frees)s::int[], %(ancs)s::text[])
         WITH ORDINALITY AS b(name, lim, free, anc, idx)
),
slots AS (
    -- each channel falls under its closest configured ancestor (OCA's
    -- parent_fallback; the name rule is queue_job_skiplocked_channel())
    SELECT c.ch, m.lim, m.anc
    FROM chans c
    CROSS JOIN LATERAL (
        SELECT b.lim, b.anc FROM buckets b
        WHERE queue_job_skiplocked_in_subtree(c.ch, b.name)
        ORDER BY length(b.name) DESC LIMIT 1
    ) m
    WHERE c.ch IS NOT NULL AND m.lim > 0
),
cand AS (
    SELECT j.id, j.priority, j.date_created, s.anc
    FROM slots s
    CROSS JOIN LATERAL (
        SELECT q.id, q.priority, q.date_created
        FROM queue_job q
        WHERE q.state = 'pending'
          AND COALESCE(q.channel, '') = s.ch
          AND (q.eta IS NULL OR q.eta <= (now() AT TIME ZONE 'utc'))
        ORDER BY q.priority, q.date_created, q.id
        LIMIT s.lim
        FOR UPDATE OF q SKIP LOCKED
    ) j
),
ranked AS (
    -- rank candidates inside every limited channel they consume capacity of
    SELECT c.id, b.free,
           row_number() OVER (PARTITION BY b.idx
                              ORDER BY c.priority, c.date_created, c.id) AS rn
    FROM cand c
    CROSS JOIN LATERAL unnest(string_to_array(NULLIF(c.anc, ''), ',')::int[]) AS a(node)
    JOIN buckets b ON b.idx = a.node
    WHERE b.free IS NOT NULL
),
chosen AS (
    SELECT c.id FROM cand c
    WHERE NOT EXISTS (SELECT 1 FROM ranked r WHERE r.id = c.id AND r.rn > r.free)
    ORDER BY c.priority, c.date_created, c.id
    LIMIT %(limit)s
),
claimed AS (
    UPDATE queue_job q
    SET state = 'enqueued',
        date_enqueued = now() AT TIME ZONE 'utc',
        claimed_by = %(runner)s,
        -- a keyed hash per job: one token seen (e.g. in a log) reveals no
        -- other; the round's key is random and never leaves this runner
        claim_token = left(encode(sha256(convert_to(%(key)s || '-' || q.id, 'UTF8')), 'hex'), 32)
    FROM chosen
    WHERE q.id = chosen.id
    RETURNING q.id, q.uuid, q.channel, q.priority, q.date_created, q.claim_token
)
SELECT id, uuid, channel, priority, date_created, claim_token, NULL::timestamp AS next_eta,
       NULL::text[] AS pending_groups
FROM claimed
UNION ALL
-- one trailer row: the earliest future eta, so the caller knows when to
-- wake, and which limited groups (left out above: their buckets have lim 0)
-- have pending jobs and need a serialized claim (claim.claim_group)
SELECT NULL, NULL, NULL, NULL, NULL, NULL,
       (SELECT min(eta) FROM queue_job
        WHERE state = 'pending' AND eta > (now() AT TIME ZONE 'utc')),
       (SELECT array_agg(DISTINCT g.name)
        FROM chans c
        CROSS JOIN unnest(%(groups)s::text[]) AS g(name)
        WHERE c.ch IS NOT NULL AND queue_job_skiplocked_in_subtree(c.ch, g.name))
FROM async_commit;

-- name: release
-- Hand claims that no executor has started back to pending. Matched on the
-- fencing token: a claim that was recovered and claimed again is not ours.
UPDATE queue_job
SET state = 'pending', date_enqueued = NULL, claimed_by = NULL, claim_token = NULL
WHERE id = ANY(%(ids)s) AND state = 'enqueued' AND claim_token = ANY(%(tokens)s)
RETURNING id;

-- name: inflight_states
-- Where are the jobs this runner believes it has in flight?
SELECT id, state, claim_token FROM queue_job WHERE id = ANY(%(ids)s);

-- name: recover
-- Run by every runner, every recovery interval, as one statement:
-- 1. runners whose advisory lock is free are dead: their unstarted claims go
--    back to pending at once, whatever their age, and their row goes. The
--    xact lock taken here also keeps two recoverers off the same runner.
-- 2. started jobs whose queue_job_lock row nobody holds are dead executions
--    (OCA's rule: retry+1, or failed with JobFoundDead past max_retries).
--    The grace covers the moment between the executor's commit of `started`
--    and its lock of the row.
-- 3. enqueued jobs without a claim token (a stock runner's, e.g. across a
--    switch of the flag, or a row set by hand): no request may start them,
--    so with the flag on (stock trigger dropped) they go back at once; with
--    it off, after the same grace, if their lock row is free or missing.
-- Live claims are never requeued for being old (OCA #858). The reasons are
-- listed in migration_guide/troubleshooting.rst (job-requeued).
-- %(only)s: NULL for the whole pass; a runner id for an operator's hand-back
-- of that one runner (claim.hand_back): its part 1 only, if it is dead.
WITH dead_runners AS (
    SELECT r.id FROM queue_job_runner r
    WHERE r.id <> %(me)s AND (%(only)s::int4 IS NULL OR r.id = %(only)s::int4)
      AND pg_try_advisory_xact_lock({lock:runner}, r.id)
),
dead_claims AS (
    UPDATE queue_job q
    SET state = 'pending', date_enqueued = NULL, claimed_by = NULL, claim_token = NULL
    FROM dead_runners d
    WHERE q.state = 'enqueued' AND q.claimed_by = d.id AND q.claim_token IS NOT NULL
    RETURNING q.id, q.uuid, 'dead runner'::text AS why
),
forgotten AS (
    DELETE FROM queue_job_runner r USING dead_runners d WHERE r.id = d.id
    RETURNING r.id
),
flag_on AS (
    SELECT NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = 'queue_job'::regclass
                       AND t.tgname = 'queue_job_notify') AS yes
),
dead_jobs AS (
    SELECT q.id, q.state FROM queue_job q
    WHERE %(only)s::int4 IS NULL
      AND ((q.state = 'started'
            AND q.date_started < (now() AT TIME ZONE 'utc') - make_interval(secs => %(grace)s))
           OR (q.state = 'enqueued' AND q.claim_token IS NULL
               AND ((SELECT yes FROM flag_on) OR q.date_enqueued
                    < (now() AT TIME ZONE 'utc') - make_interval(secs => %(grace)s))))
      AND (q.id IN (SELECT l.queue_job_id FROM queue_job_lock l WHERE l.queue_job_id = q.id
                    FOR NO KEY UPDATE SKIP LOCKED)
           OR NOT EXISTS (SELECT 1 FROM queue_job_lock l WHERE l.queue_job_id = q.id))
    FOR NO KEY UPDATE SKIP LOCKED
),
requeued AS (
    UPDATE queue_job q
    SET state = CASE WHEN q.max_retries IS NOT NULL AND q.max_retries != 0
                          AND q.retry IS NOT NULL AND q.retry > q.max_retries
                     THEN 'failed' ELSE 'pending' END,
        retry = CASE WHEN q.state = 'started' THEN COALESCE(q.retry, 0) + 1 ELSE q.retry END,
        exc_name = CASE WHEN q.max_retries IS NOT NULL AND q.max_retries != 0
                             AND q.retry IS NOT NULL AND q.retry > q.max_retries
                        THEN 'JobFoundDead' ELSE q.exc_name END,
        exc_info = CASE WHEN q.max_retries IS NOT NULL AND q.max_retries != 0
                             AND q.retry IS NOT NULL AND q.retry > q.max_retries
                        THEN 'Job found dead after too many retries' ELSE q.exc_info END,
        date_enqueued = NULL, date_started = NULL, claimed_by = NULL, claim_token = NULL
    FROM dead_jobs d
    WHERE q.id = d.id
    RETURNING q.id, q.uuid,
              CASE WHEN d.state = 'enqueued' THEN 'enqueued without a claim token'
                   WHEN q.state = 'failed' THEN 'dead execution, failed as JobFoundDead'
                   ELSE 'dead execution' END::text AS why
)
SELECT id, uuid, why FROM dead_claims
UNION ALL SELECT id, uuid, why FROM requeued
UNION ALL SELECT id, NULL, 'forgotten runner' FROM forgotten;

