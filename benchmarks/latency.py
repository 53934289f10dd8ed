"""Pickup latency on an idle system: 300 jobs inserted 100 ms apart (each
after a quiet hint window), each in its own transaction; latency =
date_started - date_created (database clock). Our runner woken by hints
(`--wakeup notify`, the addon's Hinter told of each commit, default
hint_window), by polling only (`--wakeup poll`), and OCA's runner (woken by
its trigger's NOTIFY). Also ours with jobs 20 ms apart from one process,
within each other's hint window: the window's price. One runner at root:4,
the reference executor.

    python -m benchmarks latency [--jobs 300] [--interval 0.1] [--reps 2]
"""

import argparse
import time

from jobrunner import hint
from jobrunner.testing.fixtures import wait_until

from .common import Section, fmt, plot_bars
from .oca import SideBySide

def trickle(db, n, interval, send_hint):
    db.execute("TRUNCATE queue_job CASCADE")
    hinter = hint.Hinter(db.conninfo) if send_hint else None
    next_at = time.perf_counter()
    for _ in range(n):
        db.insert_jobs(1)  # autocommit: its own transaction
        if hinter:
            hinter.hint(db.name)  # after the commit, from another connection
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
    wait_until(lambda: db.scalar("SELECT count(*) FROM queue_job WHERE state <> 'done'") == 0,
               timeout=120, message="the trickle to drain")
    return sorted(r[0] * 1000 for r in db.execute(
        "SELECT EXTRACT(EPOCH FROM date_started - date_created) FROM queue_job"))


def pct(values, p):
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


def run(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks latency")
    p.add_argument("--jobs", type=int, default=300)
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--burst-interval", type=float, default=0.02)
    p.add_argument("--reps", type=int, default=2)
    args = p.parse_args(argv)
    res = {}
    with SideBySide() as sbs:
        for _rep in range(args.reps):
            for mode in ("notify", "poll"):
                with sbs.ours("root:4", "--wakeup", mode):
                    res.setdefault(f"ours, {mode}", []).append(
                        trickle(sbs.db_ours, args.jobs, args.interval, mode == "notify"))
                    if mode == "notify":
                        res.setdefault(f"ours, notify, jobs {args.burst_interval * 1000:.0f} ms "
                                       "apart", []).append(
                            trickle(sbs.db_ours, args.jobs, args.burst_interval, True))
            with sbs.oca("root:4"):
                res.setdefault("OCA", []).append(trickle(sbs.db_oca, args.jobs, args.interval, False))
        env = sbs.env
    rows = ["| runner | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|"]
    for who, runs in res.items():
        rows.append(f"| {who} | " + " | ".join(fmt([pct(r, q) for r in runs], digits=1)
                                               for q in (50, 95, 99)) + " |")
    body = "\n".join(rows) + (
        f"\n\n{args.jobs} jobs, {args.interval * 1000:.0f} ms apart (unless the row says otherwise), "
        f"{args.reps} repetitions; median [min–max] over repetitions of each percentile. Hints: the "
        f"addon's Hinter with its default hint_window ({hint.WINDOW * 1000:.0f} ms): a job after a "
        "quiet window is hinted at once; jobs closer together wait for the window's end or the "
        "runner's next poll (poll_min 50 ms after a claim). Poll mode sleeps with backoff "
        "50 ms → 5 s between empty claims, so its latency is that of the backoff.")
    fig = plot_bars("latency", "pickup latency, ms", ["p50", "p95", "p99"],
                    {who: [[pct(r, q) for r in runs] for q in (50, 95, 99)] for who, runs in res.items()})
    return Section("Pickup latency on an idle system", "python -m benchmarks latency", body, env,
                   [fig] if fig else [], res)
