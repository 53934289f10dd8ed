"""Claim latency on a big table: 10k, 200k and 2M `done` rows beside 1,000
pending ones. Ours: one claim statement (batch 1, then batch 10). Stock
path: what OCA's runner does per job, read the job by uuid and set it
enqueued by uuid (its queue of pending jobs lives in memory). Median of 300
claims per size; the ratio of each to itself at 10k.

    python -m benchmarks bigtable [--sizes 10000,200000,2000000]
"""

import argparse
import statistics
import time
from datetime import datetime, timedelta

from jobrunner import claim

from .common import Section, bench_db

STOCK_SELECT = ("SELECT channel, uuid, id, date_created, priority, EXTRACT(EPOCH FROM eta), state "
                "FROM queue_job WHERE uuid = %s")
STOCK_ENQUEUE = ("UPDATE queue_job SET state = 'enqueued', date_enqueued = date_trunc('seconds', "
                 "now() AT TIME ZONE 'utc') WHERE uuid = %s")


def add_done(db, n):
    db.insert_jobs(n, state="done", date_created=datetime.utcnow() - timedelta(days=1))


def timed(fn, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def measure(db, claims):
    db.execute("DELETE FROM queue_job WHERE state <> 'done'")
    db.insert_jobs(1000)
    db.execute("VACUUM ANALYZE queue_job")
    res = {}
    with db.conn.cursor() as cr:
        for batch in (1, 10):
            buckets = [claim.Bucket("root", batch, batch, (0,))]
            res[f"ours, batch {batch}"] = timed(lambda: claim.claim(cr, 1, buckets, batch), claims // batch
                                                if batch > 1 else claims)
        db.execute("UPDATE queue_job SET state = 'pending', claimed_by = NULL, claim_token = NULL "
                   "WHERE state = 'enqueued'")
        uuids = iter([r[0] for r in db.execute(
            "SELECT uuid FROM queue_job WHERE state = 'pending' ORDER BY priority, date_created, id")])

        def stock():
            uuid = next(uuids)
            cr.execute(STOCK_SELECT, (uuid,))
            cr.fetchall()
            cr.execute(STOCK_ENQUEUE, (uuid,))

        res["stock path (per job)"] = timed(stock, claims)
    return res


def run(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks bigtable")
    p.add_argument("--sizes", default="10000,200000,2000000")
    p.add_argument("--claims", type=int, default=300)
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with bench_db() as (c, db, env):
        res, have = {}, 0
        for size in sizes:
            add_done(db, size - have)
            have = size
            res[size] = measure(db, args.claims)
        whos = list(res[sizes[0]])
        rows = ["| done rows | " + " | ".join(f"{w} ms" for w in whos) + " |", "|---|" + "---|" * len(whos)]
        for size in sizes:
            cells = [f"{res[size][w]:.3f} ({res[size][w] / res[sizes[0]][w]:.2f}×)" for w in whos]
            rows.append(f"| {size:,} | " + " | ".join(cells) + " |")
        body = "\n".join(rows) + (
            f"\n\nMedian latency of {args.claims} claims (batch 10: {args.claims // 10} claims) beside "
            "1,000 pending jobs; in parentheses, the ratio to the same measure at the smallest size. "
            "Ours walks the partial index of pending rows only.")
        from .common import plot_bars

        fig = plot_bars("bigtable", "claim latency, ms (median)", [f"{s:,} done" for s in sizes],
                        {w: [[res[s][w]] for s in sizes] for w in whos})
        return Section("Claim latency on a big table", "python -m benchmarks bigtable", body, env,
                       [fig] if fig else [], res)
