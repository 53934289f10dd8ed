-- Named queries of queue_job_skiplocked. A query starts at a line
-- "-- name: <name>" and runs to the next one. Parameters are psycopg2
-- pyformat (%(name)s). Loaded once by jobrunner.queries.

-- name: odoo_tables_exist
-- Is this an Odoo database with a queue_job table? (checked before reading
-- ir_module_module, which a non-Odoo database does not have)
SELECT to_regclass('ir_module_module') IS NOT NULL
       AND to_regclass('queue_job') IS NOT NULL;

-- name: queue_job_module_installed
SELECT EXISTS (SELECT 1 FROM ir_module_module
               WHERE name = 'queue_job' AND state = 'installed');

-- name: schema_ready
-- Are our schema additions in place?
SELECT count(*) = 2 AS ready
FROM information_schema.columns
WHERE table_name = 'queue_job' AND column_name IN ('claimed_by', 'claim_token')
  AND table_schema = current_schema()
  AND to_regclass('queue_job_runner') IS NOT NULL
  AND to_regclass('queue_job_skiplocked_channel') IS NOT NULL;

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
WITH RECURSIVE chans(ch) AS (
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
    -- parent_fallback); "sub" means "root.sub" and NULL/'' mean root
    SELECT c.ch, m.lim, m.anc
    FROM chans c
    CROSS JOIN LATERAL (
        SELECT CASE WHEN c.ch IN ('', 'root') THEN 'root'
                    WHEN left(c.ch, 5) = 'root.' THEN c.ch
                    ELSE 'root.' || c.ch END AS full_name
    ) f
    CROSS JOIN LATERAL (
        SELECT b.lim, b.anc FROM buckets b
        WHERE b.name = f.full_name
           OR left(f.full_name, length(b.name) + 1) = b.name || '.'
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
        claim_token = %(token)s || '-' || q.id
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
-- have pending jobs and need a serialized claim (limits.py)
SELECT NULL, NULL, NULL, NULL, NULL, NULL,
       (SELECT min(eta) FROM queue_job
        WHERE state = 'pending' AND eta > (now() AT TIME ZONE 'utc')),
       (SELECT array_agg(DISTINCT g.name)
        FROM chans c
        CROSS JOIN unnest(%(groups)s::text[]) AS g(name)
        WHERE c.ch IS NOT NULL
          AND (g.name = 'root'
               OR (CASE WHEN c.ch IN ('', 'root') THEN 'root'
                        WHEN left(c.ch, 5) = 'root.' THEN c.ch
                        ELSE 'root.' || c.ch END) = g.name
               OR left(CASE WHEN left(c.ch, 5) = 'root.' THEN c.ch ELSE 'root.' || c.ch END,
                       length(g.name) + 1) = g.name || '.'));

-- name: group_lock
-- Serializes the claims of one limited group (its top-most limited channel)
-- across runners, for the rest of the transaction. Run BEFORE group_state:
-- in READ COMMITTED each statement takes a new snapshot, so the count then
-- sees every claim committed by the previous holder.
SELECT pg_advisory_xact_lock(1363825486, hashtext(%(group)s));

-- name: group_state
-- Per limited channel of the group (full names, in order), under group_lock:
--   running    enqueued or started jobs in its subtree (all runners),
--   failed     sequential: a failed job in its subtree blocks it (OCA),
--   eta_wait   sequential: the earliest future-eta job ranks before the due
--              head, so the channel waits for it instead of skipping it (OCA),
--   thr_wait   throttle: seconds until the next start may happen (<= 0: now;
--              Infinity: the last claimed job has not started yet: wait for it).
-- pats: LIKE patterns of the subtree ('root.a.%%' and 'a.%%', escaped).
WITH lim AS (
    SELECT l.name, l.short, l.pat, l.spat, l.seq, l.thr, l.idx
    FROM unnest(%(names)s::text[], %(shorts)s::text[], %(pats)s::text[], %(spats)s::text[],
                %(seqs)s::bool[], %(thrs)s::int[])
         WITH ORDINALITY AS l(name, short, pat, spat, seq, thr, idx)
)
SELECT
    (SELECT count(*) FROM queue_job q
     WHERE q.state IN ('enqueued', 'started')
       AND (l.name = 'root' OR COALESCE(q.channel, '') IN (l.name, l.short)
            OR COALESCE(q.channel, '') LIKE l.pat OR COALESCE(q.channel, '') LIKE l.spat)),
    l.seq AND EXISTS (
        SELECT 1 FROM queue_job q
        WHERE q.state = 'failed'
          AND (l.name = 'root' OR COALESCE(q.channel, '') IN (l.name, l.short)
               OR COALESCE(q.channel, '') LIKE l.pat OR COALESCE(q.channel, '') LIKE l.spat)),
    l.seq AND COALESCE((
        SELECT ROW(e.priority, e.date_created, e.id) < ROW(d.priority, d.date_created, d.id)
        FROM (SELECT q.priority, q.date_created, q.id FROM queue_job q
              WHERE q.state = 'pending' AND q.eta > (now() AT TIME ZONE 'utc')
                AND (l.name = 'root' OR COALESCE(q.channel, '') IN (l.name, l.short)
                     OR COALESCE(q.channel, '') LIKE l.pat OR COALESCE(q.channel, '') LIKE l.spat)
              ORDER BY q.eta, q.priority, q.date_created, q.id LIMIT 1) e,
             (SELECT q.priority, q.date_created, q.id FROM queue_job q
              WHERE q.state = 'pending'
                AND (q.eta IS NULL OR q.eta <= (now() AT TIME ZONE 'utc'))
                AND (l.name = 'root' OR COALESCE(q.channel, '') IN (l.name, l.short)
                     OR COALESCE(q.channel, '') LIKE l.pat OR COALESCE(q.channel, '') LIKE l.spat)
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

-- name: release
-- Hand claims that no executor has started back to pending. Matched on the
-- fencing token: a claim that was recovered and claimed again is not ours.
UPDATE queue_job
SET state = 'pending', date_enqueued = NULL, claimed_by = NULL, claim_token = NULL
WHERE id = ANY(%(ids)s) AND state = 'enqueued' AND claim_token = ANY(%(tokens)s)
RETURNING id;

-- name: runner_next_id
SELECT nextval(pg_get_serial_sequence('queue_job_runner', 'id'));

-- name: runner_lock
-- Held for the life of the control connection: this is the liveness proof.
-- Taken before the row exists, so a visible row always has a live holder
-- or a dead one, never a not-yet-started one.
SELECT pg_advisory_lock(1363825484, %(id)s);

-- name: runner_xact_lock
-- The same proof in poll mode, held by a transaction the control connection
-- keeps open (works through a transaction-pooling PgBouncer).
SELECT pg_advisory_xact_lock(1363825484, %(id)s);

-- name: runner_insert
INSERT INTO queue_job_runner (id, host, pid, version, channels)
VALUES (%(id)s, %(host)s, %(pid)s, %(version)s, %(channels)s);

-- name: runner_delete
DELETE FROM queue_job_runner WHERE id = %(id)s;

-- name: recover
-- Run by every runner, every recovery interval, as one statement:
-- 1. runners whose advisory lock is free are dead: their unstarted claims go
--    back to pending at once, whatever their age, and their row goes. The
--    xact lock taken here also keeps two recoverers off the same runner.
-- 2. started jobs whose queue_job_lock row nobody holds are dead executions
--    (OCA's rule: retry+1, or failed with JobFoundDead past max_retries).
--    The grace covers the moment between the executor's commit of `started`
--    and its lock of the row.
-- 3. enqueued jobs nobody owns (a stock runner's, e.g. across a switch of
--    the flag) whose lock row is free or missing, after the same grace.
-- Live claims are never requeued for being old (OCA #858).
WITH dead_runners AS (
    SELECT r.id FROM queue_job_runner r
    WHERE r.id <> %(me)s AND pg_try_advisory_xact_lock(1363825484, r.id)
),
dead_claims AS (
    UPDATE queue_job q
    SET state = 'pending', date_enqueued = NULL, claimed_by = NULL, claim_token = NULL
    FROM dead_runners d
    WHERE q.state = 'enqueued' AND q.claimed_by = d.id
    RETURNING q.id, q.uuid, 'runner'::text AS why
),
forgotten AS (
    DELETE FROM queue_job_runner r USING dead_runners d WHERE r.id = d.id
    RETURNING r.id
),
dead_jobs AS (
    SELECT q.id FROM queue_job q
    WHERE ((q.state = 'started'
            AND q.date_started < (now() AT TIME ZONE 'utc') - make_interval(secs => %(grace)s))
           OR (q.state = 'enqueued' AND q.claimed_by IS NULL
               AND q.date_enqueued < (now() AT TIME ZONE 'utc') - make_interval(secs => %(grace)s)))
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
    RETURNING q.id, q.uuid, ('execution:' || q.state)::text AS why
)
SELECT id, uuid, why FROM dead_claims
UNION ALL SELECT id, uuid, why FROM requeued
UNION ALL SELECT id, NULL, 'forgotten runner' FROM forgotten;

-- name: inflight_states
-- Where are the jobs this runner believes it has in flight?
SELECT id, state, claim_token FROM queue_job WHERE id = ANY(%(ids)s);

-- name: stock_trigger_present
SELECT count(*) = 3 FROM information_schema.triggers
WHERE event_object_table = 'queue_job' AND trigger_name = 'queue_job_notify'
  AND event_object_schema = current_schema();

-- name: stock_trigger_drop
-- Flag on: no NOTIFY on the commit path of job writes. (A stock runner also
-- refuses a database without this trigger: a second safety net.)
DROP TRIGGER IF EXISTS queue_job_notify ON queue_job;

-- name: runjob_lock
-- Odoo controller, flag on: lock the job only if it is enqueued with this
-- token; SKIP LOCKED, so a duplicate request never waits or conflicts.
SELECT id FROM queue_job
WHERE uuid = %(uuid)s AND state = 'enqueued'
  AND claim_token IS NOT DISTINCT FROM %(token)s
FOR UPDATE SKIP LOCKED;

-- name: runjob_claim_of
-- Why a runjob lock failed: the job's state and whether a runner claimed it.
SELECT state, claim_token IS NOT NULL, claim_token IS NOT DISTINCT FROM %(token)s
FROM queue_job WHERE uuid = %(uuid)s;

-- name: status_channels
-- queue-job-runner status: per channel (as written on the jobs, NULL and ''
-- shown as root), jobs by state, running ones, and the oldest pending age.
SELECT COALESCE(NULLIF(channel, ''), 'root') AS channel, state, count(*),
       EXTRACT(EPOCH FROM (now() AT TIME ZONE 'utc')
                          - min(date_created) FILTER (WHERE state = 'pending'))
FROM queue_job
GROUP BY 1, 2
ORDER BY 1, 2;

-- name: status_runners
-- Registered runners, whether their liveness lock is held (alive), and
-- what they have in flight. A registered runner whose lock is free is dead
-- and waits for the next recovery pass of a live one.
SELECT r.id, r.host, r.pid, r.started_at, r.version, r.channels,
       EXISTS (SELECT 1 FROM pg_locks l
               WHERE l.locktype = 'advisory' AND l.classid = 1363825484
                 AND l.objid = r.id AND l.objsubid = 2 AND l.granted
                 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())),
       (SELECT count(*) FROM queue_job q
        WHERE q.claimed_by = r.id AND q.state IN ('enqueued', 'started'))
FROM queue_job_runner r
ORDER BY r.id;
