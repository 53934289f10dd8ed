"""Code that runs in separate OS processes during tests and benchmarks."""

import time

from jobrunner import claim, db as dbmod


def claim_until_empty(conninfo, dbname, batch, runner_id, start_event, results):
    """Claim in batches until a claim comes back empty; report what was claimed."""
    conn = dbmod.connect(conninfo, dbname)
    errors, sizes, ids = [], [], []
    start_event.wait()
    t0 = time.perf_counter()
    try:
        with conn.cursor() as cr:
            while True:
                jobs, _ = claim.claim_channels(cr, runner_id, batch)
                if not jobs:
                    break
                sizes.append(len(jobs))
                ids.extend(j.id for j in jobs)
    except Exception as exc:  # reported to the test, which fails on it
        errors.append(repr(exc))
    finally:
        conn.close()
    results.put({"runner": runner_id, "ids": ids, "sizes": sizes, "errors": errors,
                 "seconds": time.perf_counter() - t0})


def concurrent_claims(database, processes, batch, timeout=300):
    """Run `processes` OS processes claiming until nothing is left; collect results."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=claim_until_empty,
                         args=(database.conninfo, database.name, batch, 1000 + i, start, results))
             for i in range(processes)]
    for p in procs:
        p.start()
    start.set()
    t0 = time.perf_counter()
    out = [results.get(timeout=timeout) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join(timeout=30)
    return out, wall
