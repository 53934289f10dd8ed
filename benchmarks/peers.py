"""In-process peers: the same no-op drain with procrastinate and pgqueuer
(latest on PyPI, installed by this benchmark into a virtualenv of its own)
at equal concurrency, against our runner with its fastest executor (the
reference executor, execution log off). Method of
shared/reference/peer_benchmarks.md: workers idle and listening, N jobs
enqueued at once through the peer's own API, t0 after it returns, t1 when a
50 ms poll first sees none left.

    python -m benchmarks peers [--jobs 5000] [--reps 2]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from jobrunner.testing.fixtures import Database, Proc, wait_until

from .common import Section, fmt, plot_bars, ratio_fmt
from .dispatch import _drain
from .oca import SideBySide

WORKER = os.path.join(os.path.dirname(__file__), "peers_workers", "peer.py")
PACKAGES = ["procrastinate", "pgqueuer", "asyncpg", "psycopg[binary]"]
LEFT = {"procrastinate": "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')",
        "pgqueuer": "SELECT count(*) FROM pgqueuer"}


def make_venv():
    path = tempfile.mkdtemp(prefix="qjsl-peers-")
    subprocess.run([sys.executable, "-m", "venv", path], check=True)
    py = os.path.join(path, "bin", "python")
    subprocess.run([py, "-m", "pip", "install", "-q", *PACKAGES], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = subprocess.run([py, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True).stdout
    versions = {line.split("==")[0].lower(): line.split("==")[1] for line in out.splitlines() if "==" in line}
    return path, py, versions


def peer_drain(c, py, peer, n, concurrency):
    dbname = f"peer_{peer}"
    c.createdb(dbname)
    dsn = f"postgresql://{c.user}@{c.host}:{c.port}/{dbname}"
    subprocess.run([py, WORKER, peer, "install", dsn], check=True, capture_output=True)
    db = Database(c, dbname, "17")
    worker = Proc([WORKER, peer, "work", str(concurrency), dsn], executable=py)
    try:
        wait_until(lambda: "ready" in worker.output(), timeout=60, message=f"{peer} worker")
        time.sleep(1)
        subprocess.run([py, WORKER, peer, "enqueue", str(n), dsn], check=True, capture_output=True)
        t0 = time.perf_counter()
        while db.scalar(LEFT[peer]):
            if time.perf_counter() - t0 > 600:
                raise RuntimeError(f"{peer} drain timed out")
            time.sleep(0.05)
        return n / (time.perf_counter() - t0)
    finally:
        worker.close()
        db.close()
        subprocess.run([os.path.join(c.bindir, "dropdb"), "-h", c.host, "-p", str(c.port), "-U", c.user,
                        dbname], capture_output=True)


def run(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks peers")
    p.add_argument("--jobs", type=int, default=5000)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--concurrencies", default="4,16")
    args = p.parse_args(argv)
    concurrencies = [int(x) for x in args.concurrencies.split(",")]
    venv, py, versions = make_venv()
    res = {}
    try:
        with SideBySide(("--no-record", "--pool", "64")) as sbs:
            for _rep in range(args.reps):
                for k in concurrencies:
                    with sbs.ours(f"root:{k}"):
                        res.setdefault(("ours", k), []).append(
                            _drain(sbs.db_ours, args.jobs, hint_after=True))
                    for peer in ("procrastinate", "pgqueuer"):
                        res.setdefault((peer, k), []).append(peer_drain(sbs.c, py, peer, args.jobs, k))
            env = sbs.env
    finally:
        subprocess.run(["rm", "-rf", venv])
    rows = ["| peer | " + " | ".join(f"concurrency {k}" for k in concurrencies) + " |",
            "|---|" + "---|" * len(concurrencies)]
    for who in ("ours", "procrastinate", "pgqueuer"):
        cells = []
        for k in concurrencies:
            vals = res[(who, k)]
            cells.append(fmt(vals) if who == "ours" else
                         f"{fmt(vals)} (ours = {ratio_fmt(res[('ours', k)], vals)})")
        rows.append(f"| {who} | " + " | ".join(cells) + " |")
    body = "\n".join(rows) + (
        f"\n\n{args.jobs} no-op jobs per run, {args.reps} repetitions, one worker process each "
        "(ours: one runner at root:C dispatching over HTTP to the reference executor; peers: "
        "`async def` no-op tasks in the worker itself, pgqueuer with batch_size C/2). Versions: "
        + ", ".join(f"{k} {versions.get(k, '?')}" for k in ("procrastinate", "pgqueuer", "asyncpg", "psycopg"))
        + ".\n\nReading: pgqueuer runs its no-op coroutine inside the worker, one dequeue per batch, no "
        "HTTP and no per-job transaction pair; ours pays what an Odoo deployment pays — an HTTP request "
        "per job and the controller's two transactions (start + lock row, then done) — through one "
        "executor process. procrastinate, with one round trip per job, is close to ours at 4 and behind "
        "at 16.")
    fig = plot_bars("peers", "jobs/s (no-op jobs)", [f"concurrency {k}" for k in concurrencies],
                    {who: [res[(who, k)] for k in concurrencies] for who in ("ours", "procrastinate", "pgqueuer")})
    return Section("In-process peers: procrastinate and pgqueuer", "python -m benchmarks peers", body, env,
                   [fig] if fig else [], res)
