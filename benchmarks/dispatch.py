"""Dispatch throughput through the same reference executor over HTTP, held
against the limit of that executor: our runner (1, 2 and 4 processes
sharing the capacity) and OCA queue_job's own runner (unmodified,
jobrunner/testing/oca.py), at total channel capacity 4, 16 and 64, with the
executor as 1 and as 2 pre-forked processes.

- limit: no runner at all. The jobs are already `enqueued` with their
  tokens and a closed-loop client keeps exactly C requests in flight on
  kept-alive connections (C = the capacity): the best any runner can do on
  this executor. Ours and OCA's are reported as fractions of it; it is
  measured before and after them in each repetition, and the mean taken.
- a drain, as in shared/reference/peer_benchmarks.md: runners started and
  idle, N no-op jobs committed in one transaction, t0 after the commit, t1
  when a 50 ms poll first sees none left; jobs/s = N / (t1 - t0).
- cost, at capacity 16: CPU seconds of the runner process(es) per 1,000 jobs
  (utime + stime from /proc/<pid>/stat) and database transactions per job
  (pg_stat_database.xact_commit, read after every backend flushed its
  counters), the executor's own share measured by the limit run.

OCA's runner gets the stock trigger (it needs it); ours runs as deployed
with the flag on (no trigger, a hint after the commit).

    python -m benchmarks dispatch [--jobs 20000] [--oca-jobs 5000] [--reps 2]
"""

import argparse
import collections
import http.client
import os
import threading
import time

from jobrunner import hint
from jobrunner.runjob import TOKEN_HEADER

from .common import Section, fmt, plot_bars, ratio_fmt, summary
from .oca import SideBySide

CAPACITIES = (4, 16, 64)
PROCESSES = (1, 2, 4)
EXECUTORS = (1, 2)
COST_CAPACITY = 16
STATS_FLUSH = 11.0  # s: an idle backend flushes its counters within 10 s (PostgreSQL 15)


def _fresh(db):
    db.execute("TRUNCATE queue_job CASCADE")
    db.execute("VACUUM ANALYZE queue_job")


def _drain(db, n, hint_after=False, timeout=900):
    _fresh(db)
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


def _limit(db, n, capacity, port):
    """The executor alone: N jobs enqueued with tokens, C requests in flight."""
    return _closed_loop(db, _enqueued(db, n), capacity, port)


def _enqueued(db, n):
    """N jobs enqueued with their tokens, as a claim leaves them: (uuid, token)s."""
    _fresh(db)
    db.insert_jobs(n)
    db.execute("UPDATE queue_job SET state = 'enqueued', claim_token = md5(id::text), "
               "date_enqueued = now() AT TIME ZONE 'utc'")
    # the update left a dead version of every row: the executor's lookups
    # would walk them (0.58 against 0.09 ms per acquisition), a slower limit.
    # No ANALYZE: statistics of an all-enqueued table would mislead the
    # next claims' plans (no pending rows expected: 1.6 ms a claim, not 0.2)
    db.execute("VACUUM queue_job")
    return db.execute("SELECT uuid, claim_token FROM queue_job")


def _closed_loop(db, jobs, capacity, port):
    """Jobs/s of a client keeping `capacity` runjob requests in flight."""
    n, todo = len(jobs), collections.deque(jobs)
    errors = []

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        try:
            while True:
                try:
                    uuid, token = todo.popleft()
                except IndexError:
                    return
                conn.request("GET", f"/queue_job/runjob?db={db.name}&job_uuid={uuid}",
                             headers={TOKEN_HEADER: token})
                conn.getresponse().read()
        except Exception as exc:  # reported: a broken limit run is no limit
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(capacity)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors or db.scalar("SELECT count(*) FROM queue_job WHERE state <> 'done'"):
        raise RuntimeError(f"limit run incomplete: {errors[:1]}")
    return n / elapsed


def _stat(pid):
    """/proc/<pid>/stat's fields after the command name: [0] is field 3 of
    proc(5) (state), [1] ppid, [11] utime, [12] stime, [13] cutime, [14] cstime."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _cpu(pids):
    """utime + stime, seconds, of these processes."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _commits(db):
    time.sleep(STATS_FLUSH)
    return db.scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")


def _cost(db, n, pids, run):
    """(runner CPU seconds per 1,000 jobs, transactions per job) of run()."""
    before_commits, before_cpu = _commits(db), _cpu(pids)
    run()
    cpu = _cpu(pids) - before_cpu
    return 1000 * cpu / n, (_commits(db) - before_commits) / n


def run(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks dispatch")
    p.add_argument("--jobs", type=int, default=20000)
    p.add_argument("--oca-jobs", type=int, default=5000)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--capacities", default=",".join(map(str, CAPACITIES)))
    p.add_argument("--executors", default=",".join(map(str, EXECUTORS)),
                   help="executor process counts (pre-fork)")
    args = p.parse_args(argv)
    capacities = [int(x) for x in args.capacities.split(",")]
    executors = [int(x) for x in args.executors.split(",")]
    results = {}  # (executor processes, who, capacity) -> [jobs/s]
    costs = {}  # who -> (cpu s per 1000 jobs, transactions per job)
    for ex in executors:
        with SideBySide(("--no-record", "--pool", "64", "--processes", str(ex))) as sbs:
            port = sbs.executor.port
            for _rep in range(args.reps):
                for capacity in capacities:
                    before = _limit(sbs.db_ours, args.jobs, capacity, port)
                    with sbs.oca(f"root:{capacity}"):
                        results.setdefault((ex, "OCA", capacity), []).append(
                            _drain(sbs.db_oca, args.oca_jobs))
                    for procs in PROCESSES:
                        if capacity // procs < 1:
                            continue
                        with sbs.ours(f"root:{capacity // procs}", processes=procs):
                            results.setdefault((ex, f"ours ×{procs}", capacity), []).append(
                                _drain(sbs.db_ours, args.jobs, hint_after=True))
                    # the machine's pace drifts over minutes: the limit brackets the runners
                    results.setdefault((ex, "limit", capacity), []).append(
                        (before + _limit(sbs.db_ours, args.jobs, capacity, port)) / 2)
            if ex == executors[0]:
                n = args.oca_jobs
                costs["limit"] = _cost(sbs.db_ours, n, [], lambda: _limit(
                    sbs.db_ours, n, COST_CAPACITY, port))
                with sbs.oca(f"root:{COST_CAPACITY}") as proc:
                    costs["OCA"] = _cost(sbs.db_oca, n, [proc.pid],
                                         lambda: _drain(sbs.db_oca, n))
                with sbs.ours(f"root:{COST_CAPACITY}") as procs:
                    costs["ours ×1"] = _cost(sbs.db_ours, n, [pr.pid for pr in procs],
                                             lambda: _drain(sbs.db_ours, n, hint_after=True))
            env, version = sbs.env, sbs.oca_runner.version
    who_list = ["limit", "OCA"] + [f"ours ×{n}" for n in PROCESSES]
    md = []
    for ex in executors:
        rows = [f"Executor: {ex} process(es).", "",
                "| runner | " + " | ".join(f"capacity {k}" for k in capacities) + " |",
                "|---|" + "---|" * len(capacities)]
        for who in who_list:
            cells = []
            for k in capacities:
                vals = results.get((ex, who, k))
                if not vals:
                    cells.append("–")
                elif who == "limit":
                    cells.append(fmt(vals))
                else:
                    cells.append(f"{fmt(vals)} ({ratio_fmt(vals, results[(ex, 'limit', k)], 2)} "
                                 "of the limit)")
            rows.append(f"| {who} | " + " | ".join(cells) + " |")
        md.append("\n".join(rows))
    if costs:
        lim_tx = costs["limit"][1]
        rows = [f"Cost at capacity {COST_CAPACITY}, {args.oca_jobs} jobs, executor "
                f"{executors[0]} process(es):", "",
                "| runner | runner CPU s / 1,000 jobs | transactions / job (all) | "
                "of which the runner's |", "|---|---|---|---|"]
        for who in ("OCA", "ours ×1"):
            cpu, tx = costs[who]
            rows.append(f"| {who} | {cpu:.3f} | {tx:.2f} | {tx - lim_tx:.2f} |")
        rows.append(f"| executor alone (limit) | – | {lim_tx:.2f} | – |")
        ours_cpu, oca_cpu = costs["ours ×1"][0], costs["OCA"][0]
        if oca_cpu:
            rows.append(f"\nOurs / OCA runner CPU per job: {ours_cpu / oca_cpu:.2f}× "
                        "(target ≤ 0.25×).")
        md.append("\n".join(rows))
    body = "\n\n".join(md)
    body += (f"\n\nOCA: `odoo-addon-queue-job` {version}, {args.oca_jobs} jobs per run "
             f"(its rate is flat in N); ours and the limit: {args.jobs} jobs per run, ours with "
             f"the capacity split over the processes; {args.reps} repetitions; a fraction is the "
             "median over repetitions of runner / limit in the same repetition. Reference "
             "executor: gevent, execution log off, pre-forked as said.")
    figure = plot_bars("dispatch", "jobs/s (no-op jobs, reference executor, 1 process)",
                       [f"capacity {k}" for k in capacities],
                       {who: [results.get((executors[0], who, k)) for k in capacities]
                        for who in who_list})
    data = {"results": results, "costs": costs, "summary": {
        k: summary(v) for k, v in results.items()}}
    return Section("Dispatch: ours and OCA's runner against the executor's limit",
                   "python -m benchmarks dispatch", body, env, [figure] if figure else [], data)
