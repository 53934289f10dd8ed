"""queue-job-runner demo: from nothing to a multi-runner drain, then clean up.

Starts a throwaway PostgreSQL (as the postgres user when run as root), creates
OCA queue_job's schema and ours, starts the reference executor and N runner
processes, enqueues the jobs in one transaction, shows progress, and prints
throughput, pickup latency, jobs per runner and duplicates.
"""

import sys
import time

from .. import hint
from .executor import create_execution_log
from .fixtures import build_db, insert_jobs, registered_runners, start_executor, start_runner, wait_until
from .pgcluster import Cluster

DBNAME = "queue_job_demo"


def _bar(done, total, width=40):
    filled = int(width * done / total) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done:>7}/{total}"


def _percentile(sorted_values, pct):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(pct / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def main(args):
    n_jobs, n_runners = args.jobs, args.runners
    out = sys.stdout
    print(f"queue_job_skiplocked demo: {n_jobs} no-op jobs, {n_runners} runner processes "
          f"(channels {args.channels} each), reference executor over HTTP", file=out)
    executor, runners = None, []
    with Cluster() as cluster:
        print(f"- throwaway PostgreSQL on {cluster.host}:{cluster.port}", file=out)
        db = build_db(cluster, DBNAME, "17")
        try:
            with db.conn.cursor() as cr:
                create_execution_log(cr)
            print("- OCA queue_job 17.0 schema + queue_job_skiplocked schema created", file=out)
            executor = start_executor(cluster, "--pool", "96")
            print(f"- reference executor on 127.0.0.1:{executor.port}", file=out)
            # the runners log to our terminal, at --log-level
            runners = [start_runner(cluster, [DBNAME], executor.port, "--channels", args.channels,
                                    "--log-level", args.log_level, capture=False)
                       for _ in range(n_runners)]
            wait_until(lambda: registered_runners(db) >= n_runners, timeout=60,
                       message="the runners to register")
            print(f"- {n_runners} runners registered; enqueueing {n_jobs} jobs in one transaction", file=out)

            with db.conn.cursor() as cr:
                insert_jobs(cr, n_jobs)
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
                    insert_jobs(cr, 1)  # committed (autocommit) ...
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
            for p in runners:
                p.popen.terminate()  # SIGTERM to all first: they drain side by side
            codes = [p.terminate() for p in runners]
            if executor is not None:
                executor.terminate(timeout=30)
                executor.close()
            db.close()

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
