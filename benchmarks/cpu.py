"""Where the CPU goes at the executor's limit: the profile that bounds
`dispatch`. One executor process, capacity C; the limit run (a client
keeping C requests in flight, no runner) and our runner's drain, side by
side in each repetition. For each: CPU ms per job of the requester (the
limit's client threads, or our runner process), the executor and the
PostgreSQL server (postmaster, backends alive or ended: /proc utime +
stime, cutime + cstime); then, from pg_stat_statements with
track_planning, what each statement costs PostgreSQL per job (calls per
job, planning and execution ms per call). On 2 cores the limit run keeps
both busy, so the runner's rate is the limit's rate scaled by the CPU a
job costs in each.

    python -m benchmarks cpu [--jobs 6000] [--capacity 4] [--reps 2]
"""

import argparse
import os

from .common import Section
from .dispatch import _closed_loop, _cpu, _drain, _enqueued, _stat
from .oca import SideBySide


def _server_cpu(cluster):
    """CPU seconds of the PostgreSQL server: the postmaster with its ended
    children (cutime + cstime) and the children alive now."""
    with open(os.path.join(cluster.datadir, "postmaster.pid")) as f:
        master = int(f.readline())
    fields = _stat(master)
    total = sum(int(v) for v in fields[11:15])  # its own time and its ended children's
    for name in os.listdir("/proc"):
        if name.isdigit() and name != str(master):
            try:
                fields = _stat(name)
            except FileNotFoundError:  # ended meanwhile: in the postmaster's cutime now
                continue
            if int(fields[1]) == master:
                total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _own_cpu():
    t = os.times()
    return t.user + t.system


STATEMENTS = """
SELECT calls, total_plan_time, total_exec_time,
       left(regexp_replace(regexp_replace(query, '--[^\\n]*', '', 'g'), '\\s+', ' ', 'g'), 70)
FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
WHERE d.datname = current_database() AND calls > 0
ORDER BY total_plan_time + total_exec_time DESC LIMIT 6
"""


def _measure(sbs, n, run, requester):
    """(rate, {part: CPU ms per job}, statements) of run(), which dispatches n jobs."""
    db = sbs.db_ours
    db.execute("SELECT pg_stat_statements_reset()")
    before = (requester(), _cpu([sbs.executor.pid]), _server_cpu(sbs.c))
    rate = run()
    after = (requester(), _cpu([sbs.executor.pid]), _server_cpu(sbs.c))
    parts = dict(zip(("requester", "executor", "PostgreSQL"),
                     (1000 * (a - b) / n for a, b in zip(after, before))))
    stmts = [(calls / n, plan / calls, exe / calls, text)
             for calls, plan, exe, text in db.execute(STATEMENTS)]
    return rate, parts, stmts


def run(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks cpu")
    p.add_argument("--jobs", type=int, default=6000)
    p.add_argument("--capacity", type=int, default=4)
    p.add_argument("--reps", type=int, default=2)
    args = p.parse_args(argv)
    n, cap = args.jobs, args.capacity
    rows, statements = [], {}
    with SideBySide(("--no-record", "--pool", "64", "--processes", "1")) as sbs:
        db = sbs.db_ours
        db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        db.execute("ALTER SYSTEM SET pg_stat_statements.track_planning = on")
        db.execute("SELECT pg_reload_conf()")
        for _rep in range(args.reps):
            jobs = _enqueued(db, n)
            limit = _measure(sbs, n, lambda: _closed_loop(db, jobs, cap, sbs.executor.port),
                             _own_cpu)
            with sbs.ours(f"root:{cap}") as procs:
                ours = _measure(sbs, n, lambda: _drain(db, n, hint_after=True),
                                lambda: _cpu([pr.pid for pr in procs]))
            rows.append((limit, ours))
            statements = {"limit": limit[2], "ours": ours[2]}
        env = sbs.env
    md = [f"One executor process, capacity {cap}, {n:,} no-op jobs per run, {args.reps} "
          "repetitions (one row each). CPU ms per job:", "",
          "| run | jobs/s | requester | executor | PostgreSQL | total | ours / limit (rate) |",
          "|---|---|---|---|---|---|---|"]
    for i, (limit, ours) in enumerate(rows, 1):
        for who, (rate, parts, _s) in (("limit", limit), ("ours", ours)):
            total = sum(parts.values())
            tail = f"{ours[0] / limit[0]:.2f}" if who == "ours" else ""
            md.append(f"| {who} {i} | {rate:,.0f} | {parts['requester']:.3f} | "
                      f"{parts['executor']:.3f} | {parts['PostgreSQL']:.3f} | {total:.3f} | {tail} |")
    md += ["", "Statements of the last repetition (pg_stat_statements, track_planning on):", "",
           "| run | statement | calls / job | planning ms / call | execution ms / call |",
           "|---|---|---|---|---|"]
    for who, stmts in statements.items():
        for per_job, plan, exe, text in stmts:
            md.append(f"| {who} | `{text.strip()}` | {per_job:.2f} | {plan:.3f} | {exe:.3f} |")
    md += ["", "Requester: the limit's client threads (the benchmark process) or our "
           "runner process. The limit's window starts with its jobs enqueued; ours includes "
           "the insert of the pending jobs (one statement) and the 50 ms poll that sees the "
           "drain's end."]
    return Section("Where the CPU goes at the limit", "python -m benchmarks cpu", "\n".join(md),
                   env, [], {"rows": rows})
