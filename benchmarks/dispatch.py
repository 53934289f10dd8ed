"""Dispatch throughput through the same reference executor over HTTP: our
runner (1, 2 and 4 processes sharing the capacity) against OCA queue_job's
own runner (unmodified, jobrunner/testing/oca.py), at total channel capacity 4, 16
and 64. As in shared/reference/peer_benchmarks.md: runners started and idle,
N no-op jobs committed in one transaction, t0 after the commit, t1 when a
50 ms poll first sees none left; jobs/s = N / (t1 - t0).

OCA's runner gets the stock trigger (it needs it); ours runs as deployed
with the flag on (no trigger, a hint after the commit).

    python -m benchmarks dispatch [--jobs 20000] [--oca-jobs 5000] [--reps 2]
"""

import argparse
import time

from jobrunner import hint

from .common import Section, fmt, plot_bars, ratio_fmt
from .oca import SideBySide

CAPACITIES = (4, 16, 64)
PROCESSES = (1, 2, 4)


def _insert_and_wait(db, n, hint_after=False, timeout=900):
    db.execute("TRUNCATE queue_job CASCADE")
    db.execute("VACUUM ANALYZE queue_job")
    db.insert_jobs(n)  # one statement: all N commit at once
    t0 = time.perf_counter()
    if hint_after:
        with db.conn.cursor() as cr:
            hint.notify(cr)
    while db.scalar("SELECT count(*) FROM queue_job WHERE state <> 'done'"):
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError("drain timed out")
        time.sleep(0.05)
    return n / (time.perf_counter() - t0)


def run(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks dispatch")
    p.add_argument("--jobs", type=int, default=20000)
    p.add_argument("--oca-jobs", type=int, default=5000)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--capacities", default=",".join(map(str, CAPACITIES)))
    args = p.parse_args(argv)
    capacities = [int(x) for x in args.capacities.split(",")]
    results = {}  # (who, capacity) -> [jobs/s]
    with SideBySide(("--no-record", "--pool", "64")) as sbs:
        for _rep in range(args.reps):
            for capacity in capacities:
                with sbs.oca(f"root:{capacity}"):
                    results.setdefault(("OCA", capacity), []).append(
                        _insert_and_wait(sbs.db_oca, args.oca_jobs))
                for procs in PROCESSES:
                    if capacity // procs < 1:
                        continue
                    with sbs.ours(f"root:{capacity // procs}", processes=procs):
                        results.setdefault((f"ours ×{procs}", capacity), []).append(
                            _insert_and_wait(sbs.db_ours, args.jobs, hint_after=True))
        env, version = sbs.env, sbs.oca_runner.version
    rows = ["| runner | " + " | ".join(f"capacity {k}" for k in capacities) + " |",
            "|---|" + "---|" * len(capacities)]
    who_list = ["OCA"] + [f"ours ×{n}" for n in PROCESSES]
    for who in who_list:
        cells = []
        for k in capacities:
            vals = results.get((who, k))
            if not vals:
                cells.append("–")
            elif who == "OCA":
                cells.append(fmt(vals))
            else:
                cells.append(f"{fmt(vals)} ({ratio_fmt(vals, results[('OCA', k)])} OCA)")
        rows.append(f"| {who} | " + " | ".join(cells) + " |")
    md = "\n".join(rows)
    md += (f"\n\nOCA: `odoo-addon-queue-job` {version}, {args.oca_jobs} jobs per run "
           f"(its rate is flat in N); ours: {args.jobs} jobs per run, the capacity split over the "
           f"processes; {args.reps} repetitions; ratio = median over repetitions of ours / OCA in the "
           "same repetition. Reference executor: one process, gevent, execution log off.")
    figure = plot_bars("dispatch", "jobs/s (no-op jobs, reference executor)",
                       [f"capacity {k}" for k in capacities],
                       {who: [results.get((who, k)) for k in capacities] for who in who_list})
    return Section("Dispatch throughput: ours vs OCA's runner", "python -m benchmarks dispatch",
                   md, env, [figure] if figure else [], results)
