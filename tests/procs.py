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


# -- runner and executor processes -------------------------------------------
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile

from jobrunner.pgcluster import free_port


class Proc:
    """A child process whose stderr goes to a file the test can read."""

    def __init__(self, args, env=None, executable=None):
        self.log = tempfile.NamedTemporaryFile(prefix="qjsl-", suffix=".log", delete=False)
        full_env = dict(os.environ, PYTHONUNBUFFERED="1")
        full_env.update(env or {})
        self.args = args
        self.popen = subprocess.Popen([executable or sys.executable, *args], stdout=self.log,
                                      stderr=subprocess.STDOUT,
                                      env=full_env)

    @property
    def pid(self):
        return self.popen.pid

    def output(self):
        with open(self.log.name) as f:
            return f.read()

    def alive(self):
        return self.popen.poll() is None

    def terminate(self, timeout=60):
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=timeout)

    def kill(self):
        if self.alive():
            self.popen.kill()
        self.popen.wait(timeout=30)

    def close(self):
        self.kill()
        self.log.close()
        os.unlink(self.log.name)


def wait_port(port, timeout=30.0):
    from .helpers import wait_until

    def up():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_until(up, timeout=timeout, message=f"port {port} to listen")


def db_args(cluster):
    return ["--db-host", cluster.host, "--db-port", str(cluster.port), "--db-user", cluster.user]


def start_executor(cluster, *extra, port=None):
    port = port or free_port()
    proc = Proc(["-m", "jobrunner.executor", "--port", str(port), *db_args(cluster), *extra])
    wait_port(port)
    proc.port = port
    return proc


def start_runner(cluster, databases, executor_port, *extra, env=None):
    args = ["-m", "jobrunner", "run", *db_args(cluster), "--host", "127.0.0.1",
            "--port", str(executor_port)]
    for name in databases:
        args += ["--database", name]
    return Proc(args + list(extra), env=env)


def registered_runners(database):
    return database.scalar("SELECT count(*) FROM queue_job_runner")


@contextlib.contextmanager
def stuck_runner(cluster, db, procs, n_jobs, *extra, channel="root"):
    """A live runner holding n_jobs claims that stay `enqueued`: its executor
    accepts connections and never answers. Started first (no other runner)."""
    from .helpers import wait_until

    hole = socket.create_server(("127.0.0.1", free_port()), backlog=128)
    try:
        runner = start_runner(cluster, [db.name], hole.getsockname()[1], "--channels", f"root:{n_jobs}",
                              *extra)
        procs.append(runner)
        wait_until(lambda: registered_runners(db) == 1)
        db.insert_jobs(n_jobs, channel=channel)
        wait_until(lambda: db.scalar("SELECT count(*) FROM queue_job WHERE state = 'enqueued'") == n_jobs,
                   message=f"{n_jobs} claims held by the stuck runner")
        yield runner
    finally:
        hole.close()
