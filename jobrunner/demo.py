"""queue-job-runner demo: from nothing to a multi-runner drain, then clean up.

Starts a throwaway PostgreSQL (as the postgres user when run as root), creates
OCA queue_job's schema and ours, starts the reference executor and N runner
processes, enqueues the jobs in one transaction, shows progress, and prints
throughput, pickup latency, jobs per runner and duplicates.
"""

import os
import signal
import subprocess
import sys
import time

from . import db as dbmod, hint, queries, schema
from .pgcluster import Cluster, free_port

DBNAME = "queue_job_demo"


def _bar(done, total, width=40):
    filled = int(width * done / total) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done:>7}/{total}"


def _percentile(sorted_values, pct):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(pct / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def _wait_port(port, proc, timeout=30):
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the executor exited at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the executor did not listen in time")


def _wait_runners(conn, n, timeout=60):
    deadline = time.monotonic() + timeout
    with conn.cursor() as cr:
        while time.monotonic() < deadline:
            cr.execute("SELECT count(*) FROM queue_job_runner")
            if cr.fetchone()[0] >= n:
                return
            time.sleep(0.05)
    raise RuntimeError("the runners did not register in time")


INSERT_JOBS = """
INSERT INTO queue_job (uuid, name, model_name, method_name, records, args, kwargs, func_string,
                       state, priority, date_created, retry, max_retries, channel)
SELECT md5(random()::text || g::text), 'demo job ' || g, 'queue.job', 'noop', '{}', '[]', '{}',
       'noop()', 'pending', 10, clock_timestamp() AT TIME ZONE 'utc', 0, 5, 'root'
FROM generate_series(1, %s) g
"""


def main(args):
    n_jobs, n_runners = args.jobs, args.runners
    out = sys.stdout
    print(f"queue_job_skiplocked demo: {n_jobs} no-op jobs, {n_runners} runner processes "
          f"(channels {args.channels} each), reference executor over HTTP", file=out)
    procs = []
    with Cluster() as cluster:
        print(f"- throwaway PostgreSQL on {cluster.host}:{cluster.port}", file=out)
        cluster.createdb(DBNAME)
        conn = dbmod.connect(cluster.conninfo(), DBNAME)
        try:
            with conn.cursor() as cr:
                cr.execute(queries.sql_file("stock/queue_job_17.sql"))
                cr.execute(queries.sql_file("stock/notify_trigger.sql"))
                schema.migrate(cr, DBNAME)
                cr.execute(queries.get("execution_log_create"))
            print("- OCA queue_job 17.0 schema + queue_job_skiplocked schema created", file=out)
            port = free_port()
            db_args = ["--db-host", cluster.host, "--db-port", str(cluster.port), "--db-user", cluster.user]
            executor = subprocess.Popen(
                [sys.executable, "-m", "jobrunner.executor", "--port", str(port), "--pool", "96", *db_args],
                stdout=subprocess.DEVNULL)
            procs.append(executor)
            _wait_port(port, executor)
            print(f"- reference executor on 127.0.0.1:{port}", file=out)
            for _ in range(n_runners):
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "jobrunner", "run", "--database", DBNAME, *db_args,
                     "--host", "127.0.0.1", "--port", str(port), "--channels", args.channels,
                     "--log-level", args.log_level]))
            _wait_runners(conn, n_runners)
            print(f"- {n_runners} runners registered; enqueueing {n_jobs} jobs in one transaction", file=out)

            with conn.cursor() as cr:
                cr.execute(INSERT_JOBS, (n_jobs,))
                t0 = time.monotonic()
                done, tty, last_line = 0, out.isatty(), 0.0
                while done < n_jobs:
                    cr.execute("SELECT count(*) FROM queue_job WHERE state = 'done'")
                    done = cr.fetchone()[0]
                    if tty:  # a live bar on a terminal, a line every 2 s in a log
                        print("\r  " + _bar(done, n_jobs), end="", file=out, flush=True)
                    elif time.monotonic() - last_line >= 2 or done == n_jobs:
                        print("  " + _bar(done, n_jobs), file=out, flush=True)
                        last_line = time.monotonic()
                    if done < n_jobs:
                        if time.monotonic() - t0 > max(120, n_jobs / 20):
                            raise RuntimeError(f"drain too slow: {done}/{n_jobs} done")
                        time.sleep(0.1)
                elapsed = time.monotonic() - t0
                if tty:
                    print(file=out)

                # idle pickup latency: single jobs into an idle system
                cr.execute("SELECT max(id) FROM queue_job")
                first_single = cr.fetchone()[0] + 1
                hinter = hint.Hinter(cluster.conninfo())
                for _ in range(100):
                    cr.execute(INSERT_JOBS, (1,))  # committed (autocommit) ...
                    hinter.hint(DBNAME)  # ... then the wake-up hint, off the commit path
                    time.sleep(0.02)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    cr.execute("SELECT count(*) FROM queue_job WHERE state = 'done' AND id >= %s",
                               (first_single,))
                    if cr.fetchone()[0] == 100:
                        break
                    time.sleep(0.05)
                cr.execute("SELECT EXTRACT(EPOCH FROM date_started - date_created) * 1000 FROM queue_job "
                           "WHERE id >= %s AND date_started IS NOT NULL ORDER BY 1", (first_single,))
                latencies = [r[0] for r in cr.fetchall()]
                cr.execute("SELECT runner_id, count(*) FROM jobrunner_execution GROUP BY 1 ORDER BY 1")
                per_runner = cr.fetchall()
                cr.execute("SELECT count(*) FROM (SELECT job_id FROM jobrunner_execution "
                           "GROUP BY job_id HAVING count(*) > 1) d")
                duplicates = cr.fetchone()[0]
                cr.execute("SELECT state, count(*) FROM queue_job GROUP BY 1 ORDER BY 1")
                states = cr.fetchall()
        finally:
            for p in procs[1:]:
                p.send_signal(signal.SIGTERM)
            codes = [p.wait(timeout=60) for p in procs[1:]]
            if procs:
                procs[0].terminate()
                procs[0].wait(timeout=30)
            conn.close()

    print("Summary", file=out)
    print(f"  drained {n_jobs} jobs in {elapsed:.2f}s: {n_jobs / elapsed:,.0f} jobs/s", file=out)
    print(f"  idle pickup latency (date_created -> date_started, {len(latencies)} single jobs): "
          f"p50 {_percentile(latencies, 50):.1f} ms, p99 {_percentile(latencies, 99):.1f} ms", file=out)
    print("  jobs per runner: " + ", ".join(f"runner {r}: {c}" for r, c in per_runner), file=out)
    print(f"  duplicates: {duplicates}", file=out)
    print("  final states: " + ", ".join(f"{s} {c}" for s, c in states), file=out)
    print(f"  runner exit codes after SIGTERM: {codes}", file=out)
    ok = duplicates == 0 and dict(states).get("done") == n_jobs + 100 and all(c == 0 for c in codes)
    print("OK" if ok else "FAILED", file=out)
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
