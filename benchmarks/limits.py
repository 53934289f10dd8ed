"""Global limits do not slow unlimited channels: 4 runner processes
(root:5 each) and the reference executor drain no-op jobs of an unlimited
channel, alone, then beside a backlog of a channel limited to 3 across all
runners (root.lim:3:global, 100 ms jobs). Throughput of the unlimited
channel in both runs, and the ratio (target >= 0.8).

    python -m benchmarks limits [--jobs 3000] [--reps 3]
"""

import argparse
import statistics
from datetime import datetime, timedelta

from jobrunner.testing.fixtures import registered_runners, start_executor, start_runner, wait_until

from .common import Section, bench_db, fmt, plot_bars

CHANNELS = "root:5,root.lim:3:global"


def drain(c, db, jobs, limited):
    db.execute("TRUNCATE queue_job CASCADE")
    db.execute("DROP TABLE IF EXISTS jobrunner_execution")
    base = datetime.utcnow() - timedelta(hours=1)
    if limited:  # older: first in OCA order, and more than the whole run needs
        db.insert_jobs(jobs // 10, channel="root.lim", method_name="sleep_ms", args="[100]",
                       date_created=base)
    db.insert_jobs(jobs, channel="root.free", date_created=base + timedelta(minutes=1))
    db.execute("VACUUM ANALYZE queue_job")
    procs = [start_executor(c)]
    try:
        procs += [start_runner(c, [db.name], procs[0].port, "--channels", CHANNELS) for _ in range(4)]
        wait_until(lambda: registered_runners(db) == 4, message="4 runners")
        wait_until(lambda: not db.scalar("SELECT count(*) FROM queue_job WHERE channel = 'root.free' "
                                         "AND state <> 'done'"), timeout=600, interval=0.2,
                   message="the free channel to drain")
        first, last = db.execute("SELECT min(date_started), max(date_done) FROM queue_job "
                                 "WHERE channel = 'root.free'")[0]
        return jobs / (last - first).total_seconds()
    finally:
        for p in procs:
            p.close()


def run(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks limits")
    p.add_argument("--jobs", type=int, default=3000)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args(argv)
    with bench_db() as (c, db, env):
        alone, beside, ratios = [], [], []
        for _ in range(args.reps):
            a = drain(c, db, args.jobs, limited=False)
            b = drain(c, db, args.jobs, limited=True)
            alone.append(a)
            beside.append(b)
            ratios.append(b / a)
        ratios.sort()
        body = "\n".join([
            "| root.free | jobs/s |", "|---|---|", f"| alone | {fmt(alone)} |",
            f"| beside root.lim:3:global backlog | {fmt(beside)} |"]) + (
            f"\n\nRatio beside/alone: median {statistics.median(ratios):.2f} "
            f"[{ratios[0]:.2f}–{ratios[-1]:.2f}] (target ≥ 0.8). 4 runner processes ({CHANNELS} each), "
            f"{args.jobs:,} no-op jobs in root.free, then the same beside {args.jobs // 10:,} 100-ms jobs "
            f"in root.lim (older: first in OCA order); {args.reps} repetitions.")
        fig = plot_bars("limits", "root.free jobs/s", ["root.free"],
                        {"alone": [alone], "beside root.lim:3:global": [beside]})
        return Section("Global limits do not slow unlimited channels", "python -m benchmarks limits", body,
                       env, [fig] if fig else [], {"alone": alone, "beside": beside, "ratios": ratios})
