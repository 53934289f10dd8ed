-- queue-job-runner status.

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
SELECT r.id, r.host, r.pid, r.started_at, r.version, r.channels, r.executor, r.executor_workers,
       EXISTS (SELECT 1 FROM pg_locks l
               WHERE l.locktype = 'advisory' AND l.classid = {lock:runner}
                 AND l.objid = r.id AND l.objsubid = 2 AND l.granted  -- 2: a two-key lock
                 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())),
       (SELECT count(*) FROM queue_job q
        WHERE q.claimed_by = r.id AND q.state IN ('enqueued', 'started'))
FROM queue_job_runner r
ORDER BY r.id;


-- name: pending_gauges
-- /metrics: pending jobs per channel (named as status_channels names them)
-- and the age of the oldest due one, waiting since its eta or its creation.
-- Only pending rows: the done/failed history is never read.
SELECT COALESCE(NULLIF(channel, ''), 'root') AS channel, count(*),
       EXTRACT(EPOCH FROM (now() AT TIME ZONE 'utc') - min(GREATEST(date_created, eta))
               FILTER (WHERE eta IS NULL OR eta <= (now() AT TIME ZONE 'utc')))
FROM queue_job
WHERE state = 'pending'
GROUP BY 1
ORDER BY 1;
