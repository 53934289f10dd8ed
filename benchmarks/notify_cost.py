"""Commit-path cost of NOTIFY: 16 pgbench clients each insert one job per
transaction into the real queue_job table (fsync on).

* no trigger: the ceiling;
* stock trigger: queue_job_notify, a NOTIFY inside every job write;
* our schema: no trigger, our indexes, no hint (the indexes' share);
* our hint: no trigger (flag on: the addon drops it) and our schema
  additions, while 16 hint senders, one per client as one per Odoo worker
  process, each NOTIFY after commit at their bounded rate (every 10 ms).

    python -m benchmarks notify_cost [--seconds 10] [--reps 3] [--clients 16]
"""

import argparse
import os
import re
import subprocess
import tempfile
import threading
import time

from jobrunner import db as dbmod
from jobrunner import hint
from jobrunner.testing.fixtures import build_db, insert_jobs
from jobrunner.testing.pgcluster import find_bindir

from .common import Section, cluster, environment, fmt

def pgbench(c, db, clients, seconds):
    """TPS of one job INSERT per transaction into database `db`."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f, db.conn.cursor() as cr:
        f.write(insert_jobs(cr, 1, sql_only=True) + ";\n")
    try:
        out = subprocess.run(
            [os.path.join(find_bindir(), "pgbench"), "-n", "-M", "prepared", "-c", str(clients),
             "-j", "2", "-T", str(seconds), "-f", f.name, "-h", c.host, "-p", str(c.port),
             "-U", c.user, db.name], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


class HintSenders:
    """n senders, each one NOTIFY per interval on its own connection, after
    commit and outside the writers' transactions: the addon's bound."""

    def __init__(self, c, dbname, n, interval=0.01):
        self.stop = threading.Event()
        self.sent = 0
        self.threads = [threading.Thread(target=self._run, args=(c, dbname, interval)) for _ in range(n)]

    def _run(self, c, dbname, interval):
        conn = dbmod.connect(c.conninfo(), dbname)
        with conn.cursor() as cr:
            while not self.stop.is_set():
                hint.notify(cr)
                self.sent += 1
                time.sleep(interval)
        conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()


def run(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks notify_cost")
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--clients", type=int, default=16)
    args = p.parse_args(argv)
    c = cluster(fast=False)
    try:
        dbs = {"no_trigger": build_db(c, "no_trigger", migrate=False, trigger=False),
               "stock_trigger": build_db(c, "stock_trigger", migrate=False, trigger=True),
               "our_schema": build_db(c, "our_schema", migrate=True, trigger=False),
               "our_hint": build_db(c, "our_hint", migrate=True, trigger=False)}
        env = environment(dbs["no_trigger"].conn)
        tps = {"no_trigger": [], "stock_trigger": [], "our_schema": [], "our_hint": []}
        ratios = {"stock_trigger": [], "our_schema": [], "our_hint": []}
        for _ in range(args.reps):
            rep = {}
            for name in tps:
                if name == "our_hint":
                    with HintSenders(c, name, args.clients) as senders:
                        rep[name] = pgbench(c, dbs[name], args.clients, args.seconds)
                    hints = senders.sent / args.seconds
                else:
                    rep[name] = pgbench(c, dbs[name], args.clients, args.seconds)
                tps[name].append(rep[name])
            for name in ratios:
                ratios[name].append(rep[name] / rep["no_trigger"])
        rows = ["| scenario | TPS | ratio to no trigger (same rep) |", "|---|---|---|",
                f"| no trigger | {fmt(tps['no_trigger'])} | 1 |"]
        for name, label in (("stock_trigger", "stock queue_job_notify trigger"),
                            ("our_schema", "our schema additions, no trigger, no hint"),
                            ("our_hint", f"our hint (no trigger, {hints:,.0f} hints/s sent)")):
            med = sorted(ratios[name])[len(ratios[name]) // 2]
            rows.append(f"| {label} | {fmt(tps[name])} | {med:.2f} "
                        f"[{min(ratios[name]):.2f}–{max(ratios[name]):.2f}] |")
        for db in dbs.values():
            db.close()
        body = "\n".join(rows) + (
            f"\n\n{args.clients} pgbench clients, one job INSERT per transaction, {args.seconds} s runs, "
            f"{args.reps} repetitions. Our hint: {args.clients} senders (one per writing process), each "
            "at its bound of one NOTIFY per 10 ms, after commit and outside the writers' transactions: "
            "the worst case, since real Odoo workers enqueue far below 100 commits/s each.")
        from .common import plot_bars

        fig = plot_bars("notify_cost", "enqueue TPS (16 clients)", ["TPS"],
                        {k: [v] for k, v in tps.items()})
        return Section("Commit-path cost of NOTIFY", "python -m benchmarks notify_cost", body, env,
                       [fig] if fig else [], {"tps": tps, "ratios": ratios})
    finally:
        c.destroy()
