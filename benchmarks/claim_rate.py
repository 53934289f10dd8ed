"""Claim rate of the SKIP LOCKED engine: 8 OS processes drain 20,000 pending
jobs by claiming in batches of 1, 10 and 100 (claims only, no dispatch).

    python -m benchmarks claim_rate [--jobs 20000] [--processes 8] [--reps 3]
"""

import argparse

from tests.helpers import Database
from tests.procs import concurrent_claims

from .common import cluster, create_db, environment, fmt


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=20000)
    p.add_argument("--processes", type=int, default=8)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args(argv)
    c = cluster()
    try:
        conn = create_db(c, "bench")
        db = Database(c, "bench", "17")
        print(f"claim rate, {args.processes} processes, {args.jobs} jobs; {environment(conn)}")
        print("| batch | jobs claimed/s | claim statements/s |")
        print("|---|---|---|")
        for batch in (1, 10, 100):
            rates, stmts = [], []
            for _ in range(args.reps):
                db.execute("TRUNCATE queue_job CASCADE")
                db.insert_jobs(args.jobs)
                db.execute("VACUUM ANALYZE queue_job")
                results, wall = concurrent_claims(db, args.processes, batch)
                assert not any(r["errors"] for r in results), results
                claimed = sum(len(r["ids"]) for r in results)
                assert claimed == args.jobs
                rates.append(claimed / wall)
                stmts.append(sum(len(r["sizes"]) + 1 for r in results) / wall)
            print(f"| {batch} | {fmt(rates)} | {fmt(stmts)} |")
        db.close()
        conn.close()
    finally:
        c.destroy()
    return 0
