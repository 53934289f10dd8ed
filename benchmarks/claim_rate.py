"""Claim rate of the SKIP LOCKED engine: 8 OS processes drain 20,000 pending
jobs by claiming in batches of 1, 10 and 100 (claims only, no dispatch).

    python -m benchmarks claim_rate [--jobs 20000] [--processes 8] [--reps 3]
"""

import argparse

from jobrunner.testing.fixtures import concurrent_claims

from .common import Section, bench_db, fmt, plot_bars


def run(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks claim_rate")
    p.add_argument("--jobs", type=int, default=20000)
    p.add_argument("--processes", type=int, default=8)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args(argv)
    with bench_db() as (c, db, env):
        rows = ["| batch | jobs claimed/s | claim statements/s |", "|---|---|---|"]
        res = {}
        for batch in (1, 10, 100):
            rates, stmts = [], []
            for _ in range(args.reps):
                db.execute("TRUNCATE queue_job CASCADE")
                db.insert_jobs(args.jobs)
                db.execute("VACUUM ANALYZE queue_job")
                results, wall = concurrent_claims(db, args.processes, batch, prepared=(True,))
                assert not any(r["errors"] for r in results), results
                claimed = sum(len(r["ids"]) for r in results)
                assert claimed == args.jobs
                rates.append(claimed / wall)
                stmts.append(sum(len(r["sizes"]) + 1 for r in results) / wall)
            rows.append(f"| {batch} | {fmt(rates)} | {fmt(stmts)} |")
            res[batch] = rates
        body = "\n".join(rows) + (f"\n\n{args.processes} OS processes drain {args.jobs:,} pending jobs by "
                                  f"claiming (claims only, prepared as a runner's in notify mode), {args.reps} "
                                  "repetitions.")
        fig = plot_bars("claim_rate", "jobs claimed/s (8 processes)", [f"batch {b}" for b in res],
                        {"claim rate": list(res.values())})
        return Section("Claim rate of the SKIP LOCKED engine", "python -m benchmarks claim_rate", body, env,
                       [fig] if fig else [], res)
