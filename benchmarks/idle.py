"""Idle cost: what an idle runner sends to PostgreSQL, counted by
pg_stat_statements (statements/s) and pg_stat_database (rows written/s)
over a window after the runner has settled; ours (notify mode, default
backoff 50 ms -> 5 s, recovery every 8 s) vs OCA's runner, and ours again
with 50 active periodic definitions of a 1-hour period (its timers send
nothing between fires, issue 19).

    python -m benchmarks idle [--settle 15] [--window 30] [--reps 2]
"""

import argparse
import time

from jobrunner.testing.fixtures import Database, insert_periodic

from .common import Section, fmt, plot_bars
from .oca import SideBySide


def window(c, dbname, settle, seconds):
    time.sleep(settle)  # the runner reaches its idle state (backoff at its cap)
    admin = Database(c, "postgres", "17")
    oid = admin.scalar("SELECT oid FROM pg_database WHERE datname = %s", (dbname,))

    def counters():
        calls = admin.scalar("SELECT COALESCE(sum(calls), 0) FROM pg_stat_statements WHERE dbid = %s", (oid,))
        rows = admin.scalar("SELECT tup_inserted + tup_updated + tup_deleted FROM pg_stat_database "
                            "WHERE datid = %s", (oid,))
        return float(calls), float(rows)

    admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    c0, w0 = counters()
    time.sleep(seconds)
    admin.execute("SELECT pg_stat_clear_snapshot()")
    c1, w1 = counters()
    admin.close()
    return (c1 - c0) / seconds, (w1 - w0) / seconds


PERIODIC = "ours, 50 periodic definitions (1 h)"


def run(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks idle")
    p.add_argument("--settle", type=float, default=15)
    p.add_argument("--window", type=float, default=30)
    p.add_argument("--reps", type=int, default=2)
    args = p.parse_args(argv)
    res = {"ours": [], "OCA": [], PERIODIC: []}
    with SideBySide() as sbs:
        for _rep in range(args.reps):
            with sbs.ours():
                res["ours"].append(window(sbs.c, "bench_ours", args.settle, args.window))
            with sbs.oca():
                res["OCA"].append(window(sbs.c, "bench_oca", args.settle, args.window))
            with sbs.db_ours.conn.cursor() as cr:  # first ticks in 30 min: none in the window
                for i in range(50):
                    insert_periodic(cr, f"hourly {i}", interval_seconds=3600, start=sbs.db_ours.scalar(
                        "SELECT now() AT TIME ZONE 'utc' + interval '30 minutes'"))
            with sbs.ours():
                res[PERIODIC].append(window(sbs.c, "bench_ours", args.settle, args.window))
            sbs.db_ours.execute("DELETE FROM queue_job_periodic")
        env = sbs.env
    rows = ["| runner | statements/s | rows written/s |", "|---|---|---|"]
    for who, runs in res.items():
        rows.append(f"| {who} | {fmt([r[0] for r in runs], digits=2)} | "
                    f"{fmt([r[1] for r in runs], digits=2)} |")
    body = "\n".join(rows) + (
        f"\n\nIdle database, one runner at root:4, {args.settle:.0f} s to settle, then a "
        f"{args.window:.0f} s window; {args.reps} repetitions, median [min–max]. Ours: a claim "
        "per backoff step (2.5–5 s at the cap) and a recovery pass every 8 s; with periodic "
        "definitions, one more read of them per `periodic_refresh` (60 s) and nothing between fires.")
    fig = plot_bars("idle", "statements/s sent by an idle runner", ["statements/s"],
                    {who: [[r[0] for r in runs]] for who, runs in res.items()})
    return Section("Idle cost", "python -m benchmarks idle", body, env, [fig] if fig else [], res)
