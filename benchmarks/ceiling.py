"""Raw SQL ceiling: pgbench runs our claim statement and a completion
statement alone (no Python, no dispatch), batch 1, 10 and 100, 4 and 16
clients; then our engine does the same work from Python processes
(jobrunner.claim, then one completion statement per batch). Both run the
claim prepared with a generic plan, as a runner in notify mode does. Our claims/s as
a fraction of the ceiling, same batch, same clients, same repetition.

    python -m benchmarks ceiling [--seconds 5] [--reps 2]
"""

import argparse
import multiprocessing
import os
import subprocess
import tempfile
import time

from jobrunner import claim, prepared, queries
from jobrunner import db as dbmod
from jobrunner.testing.pgcluster import find_bindir

from .common import Section, bench_db, fmt, ratio_fmt

DONE = ("UPDATE queue_job SET state = 'done', date_done = now() AT TIME ZONE 'utc' "
        "WHERE state = 'enqueued' AND claimed_by = {runner}")


def _claim_sql(conn, batch):
    """Our claim statement with one root bucket as pgbench will prepare it,
    runner id and token from pgbench."""
    with conn.cursor() as cr:
        sql = cr.mogrify(queries.get("claim"), {
            "names": ["root"], "lims": [batch], "frees": [batch], "ancs": ["1"], "limit": batch,
            "runner": 987654321, "key": "KEY", "groups": []}).decode()
    sql = sql.replace("987654321", ":client_id").replace("'TOKEN'", "('t' || :tok)")
    # one line for pgbench: drop the comments first (no '--' inside strings here)
    return " ".join(line.split("--")[0] for line in sql.splitlines()).split(";")[0]


def pgbench(c, dbname, conn, batch, clients, seconds):
    script = ("\\set tok random(1, 2000000000)\n" + " ".join(_claim_sql(conn, batch).split()) + ";\n"
              + DONE.format(runner=":client_id") + ";\n")
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    try:
        subprocess.run([os.path.join(find_bindir(), "pgbench"), "-n", "-M", "prepared", "-c", str(clients),
                        "-j", "2", "-T", str(seconds), "-f", f.name, "-h", c.host, "-p", str(c.port),
                        "-U", c.user, dbname], capture_output=True, text=True, check=True,
                       env=dict(os.environ, PGOPTIONS="-c plan_cache_mode=force_generic_plan"))
    finally:
        os.unlink(f.name)


def _engine_worker(conninfo, dbname, batch, runner_id, seconds, start):
    conn = dbmod.connect(conninfo, dbname)
    plan = prepared.attach(conn)
    plan.busy = True
    buckets = [claim.Bucket("root", batch, batch, (0,))]
    start.wait()  # every claimer connected: the clock starts
    deadline = time.perf_counter() + seconds
    made = None
    with conn.cursor() as cr:
        while time.perf_counter() < deadline:
            jobs, _, _ = claim.claim(cr, runner_id, buckets, batch)
            if not jobs:
                break
            if plan.made != made:  # each claim plan starts with DEALLOCATE ALL: ours goes too
                cr.execute("PREPARE done AS " + DONE.format(runner=int(runner_id)))  # as pgbench does
                made = plan.made
            cr.execute("EXECUTE done")
    conn.close()


def engine(c, dbname, batch, clients, seconds):
    ctx = multiprocessing.get_context("spawn")
    # spawned: 16 imports take seconds of CPU on 2 cores, and no claim may
    # race them; a claimer that dies before the barrier breaks it
    start = ctx.Barrier(clients + 1, timeout=120)
    procs = [ctx.Process(target=_engine_worker, args=(c.conninfo(), dbname, batch, 1 + i, seconds, start))
             for i in range(clients)]
    for p in procs:
        p.start()
    start.wait()
    for p in procs:
        p.join()
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:  # a dead claimer would read as a slow engine
        raise RuntimeError(f"ceiling: {len(failed)} of {clients} engine processes failed "
                           f"(exit codes {failed}); see their traceback above")


def measure(db, fill, what):
    db.execute("TRUNCATE queue_job CASCADE")
    db.insert_jobs(fill)
    db.execute("VACUUM ANALYZE queue_job")
    db.execute("CHECKPOINT")
    t0 = time.perf_counter()
    what()
    wall = time.perf_counter() - t0
    first, last = db.execute("SELECT min(date_enqueued), max(date_done) FROM queue_job "
                             "WHERE state = 'done'")[0]
    done = db.scalar("SELECT count(*) FROM queue_job WHERE state = 'done'")
    span = (last - first).total_seconds() if first and last else wall
    return done / max(span, 1e-3)


def run(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks ceiling")
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--fill", type=int, default=200000)
    args = p.parse_args(argv)
    with bench_db() as (c, db, env):
        res = {}
        for _rep in range(args.reps):
            for batch in (1, 10, 100):
                for clients in (4, 16):
                    fill = min(args.fill, 6000 * batch if batch < 100 else args.fill)
                    res.setdefault(("sql", batch, clients), []).append(measure(
                        db, fill, lambda: pgbench(c, "bench", db.conn, batch, clients, args.seconds)))
                    res.setdefault(("ours", batch, clients), []).append(measure(
                        db, fill, lambda: engine(c, "bench", batch, clients, args.seconds)))
        rows = ["| batch | clients | raw SQL (pgbench) jobs/s | our engine jobs/s | ours / raw SQL |",
                "|---|---|---|---|---|"]
        for batch in (1, 10, 100):
            for clients in (4, 16):
                sql, ours = res[("sql", batch, clients)], res[("ours", batch, clients)]
                ratio = ratio_fmt(ours, sql, 2).replace("×", "")
                rows.append(f"| {batch} | {clients} | {fmt(sql)} | {fmt(ours)} | {ratio} |")
        body = "\n".join(rows) + (
            "\n\nBoth run the same claim statement (jobrunner/sql/claim.sql `claim`, one root "
            "bucket, prepared, generic plan) and the same completion statement; jobs/s = rows done / "
            "(last date_done - first date_enqueued).")
        from .common import plot_bars

        fig = plot_bars("ceiling", "jobs claimed and completed per second",
                        [f"b{b}/c{k}" for b in (1, 10, 100) for k in (4, 16)],
                        {"raw SQL (pgbench)": [res[("sql", b, k)] for b in (1, 10, 100) for k in (4, 16)],
                         "our engine": [res[("ours", b, k)] for b in (1, 10, 100) for k in (4, 16)]})
        return Section("Claims against the raw SQL ceiling", "python -m benchmarks ceiling", body, env,
                       [fig] if fig else [], res)
