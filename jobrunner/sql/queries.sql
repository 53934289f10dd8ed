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
  AND to_regclass('queue_job_runner') IS NOT NULL;

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
SELECT id, uuid, channel, priority, date_created, claim_token, NULL::timestamp AS next_eta
FROM claimed
UNION ALL
-- one trailer row: the earliest future eta, so the caller knows when to wake
SELECT NULL, NULL, NULL, NULL, NULL, NULL,
       (SELECT min(eta) FROM queue_job
        WHERE state = 'pending' AND eta > (now() AT TIME ZONE 'utc'));

-- name: release
-- Hand claimed jobs that no executor has started back to pending.
UPDATE queue_job
SET state = 'pending', date_enqueued = NULL, claimed_by = NULL, claim_token = NULL
WHERE id = ANY(%(ids)s) AND state = 'enqueued' AND claimed_by = %(runner)s
RETURNING id;
