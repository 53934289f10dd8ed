"""Commit-path cost of NOTIFY: 16 pgbench clients each insert one job per
transaction into the real queue_job table (fsync on).

* no trigger: the ceiling;
* stock trigger: queue_job_notify, a NOTIFY inside every job write;
* our schema: no trigger, our indexes, no hint (the indexes' share);
* our hint: no trigger (flag on: the addon drops it) and our schema
  additions, while 16 jobrunner.hint.Hinter, one per client as one per Odoo
  process, are told of a commit every 5 ms each: each sends at its bound,
  one NOTIFY per hint_window (50 ms), after commit and outside the writers'
  transactions.

    python -m benchmarks notify_cost [--seconds 10] [--reps 3] [--clients 16]
"""

import argparse
import os
import re
import statistics
import subprocess
import tempfile
import threading

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
    """n Odoo processes' Hinters (the addon's class, default window), each
    told of a commit every `every` seconds: the worst case, every window."""

    def __init__(self, c, dbname, n, every=0.005):
        self.stop = threading.Event()
        self.dbname, self.every = dbname, every
        self.hinters = [hint.Hinter(c.conninfo()) for _ in range(n)]
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        while not self.stop.wait(self.every):
            for hinter in self.hinters:
                hinter.hint(self.dbname)

    @property
    def sent(self):
        return sum(h.sent for h in self.hinters)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


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
        # no trigger runs first and last in each repetition, each other
        # scenario's ratio is to their mean: the machine's drift cancels out
        order = ("no_trigger", "our_hint", "our_schema", "stock_trigger", "no_trigger")
        for _ in range(args.reps):
            rep, base = {}, []
            for name in order:
                if name == "our_hint":
                    with HintSenders(c, name, args.clients) as senders:
                        sent = senders.sent
                        rep[name] = pgbench(c, dbs[name], args.clients, args.seconds)
                        hints = (senders.sent - sent) / args.seconds
                else:
                    rep[name] = pgbench(c, dbs[name], args.clients, args.seconds)
                tps[name].append(rep[name])
                if name == "no_trigger":
                    base.append(rep[name])
            for name in ratios:
                ratios[name].append(rep[name] / statistics.mean(base))
        rows = ["| scenario | TPS | ratio to no trigger (same rep: mean of its first and last run) |", "|---|---|---|",
                f"| no trigger | {fmt(tps['no_trigger'])} | 1 |"]
        for name, label in (("stock_trigger", "stock queue_job_notify trigger"),
                            ("our_schema", "our schema additions, no trigger, no hint"),
                            ("our_hint", f"our hint (no trigger, {hints:,.0f} hints/s sent)")):
            rows.append(f"| {label} | {fmt(tps[name])} | {fmt(ratios[name], digits=2)} |")
        for db in dbs.values():
            db.close()
        body = "\n".join(rows) + (
            f"\n\n{args.clients} pgbench clients, one job INSERT per transaction, {args.seconds} s runs, "
            f"{args.reps} repetitions. Our hint: {args.clients} `Hinter`s (one per writing process, "
            f"the addon's class and default hint_window of {hint.WINDOW * 1000:.0f} ms), each told "
            "of a commit every 5 ms, so each sends at its bound, after commit and outside the "
            "writers' transactions.")
        from .common import plot_bars

        fig = plot_bars("notify_cost", "enqueue TPS (16 clients)", ["TPS"],
                        {k: [v] for k, v in tps.items()})
        return Section("Commit-path cost of NOTIFY", "python -m benchmarks notify_cost", body, env,
                       [fig] if fig else [], {"tps": tps, "ratios": ratios})
    finally:
        c.destroy()
