"""What the tests, the benchmarks and the demo share: the one builder of a
queue_job database, the one insert of job rows, and the processes
(runner, reference executor) with bounded waits on them."""

import contextlib
import itertools
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib

import psycopg2

from .. import claim, db as dbmod, prepared as prepared_mod, queries, schema
from ..session import PERIODIC_PAYLOAD
from .pgcluster import free_port

STOCK = pathlib.Path(__file__).with_name("stock")

# Rows as queue_job's Job.store() writes them. Per-row values (rows=) come as
# arrays indexed by the row number; NULL arrays fall back to the scalars.
# args is cast to jsonb: 18.0's and 19.0's column type, assigned as text to 17.0's.
INSERT_JOBS = """
INSERT INTO queue_job (uuid, name, model_name, method_name, records, args, kwargs, func_string,
                       state, priority, date_created, date_done, eta, retry, max_retries,
                       channel, channel_method_name)
SELECT md5(random()::text || g::text), 'job ' || g, 'queue.job', j.method, '{}', j.args, '{}',
       j.method || '()', %(state)s, j.priority, j.created,
       CASE WHEN %(state)s = 'done' THEN now() AT TIME ZONE 'utc' END,
       j.eta, 0, %(max_retries)s, j.channel, '<queue.job>.' || j.method
FROM generate_series(1, %(n)s) g
CROSS JOIN LATERAL (SELECT
    COALESCE((%(channels)s::varchar[])[g], %(channel)s) AS channel,
    COALESCE((%(priorities)s::int[])[g], %(priority)s) AS priority,
    COALESCE((%(createds)s::timestamp[])[g],
             COALESCE(%(created)s, now() AT TIME ZONE 'utc') + make_interval(secs => g * %(spread)s))
        AS created,
    COALESCE((%(etas)s::timestamp[])[g], %(eta)s) AS eta,
    COALESCE((%(methods)s::varchar[])[g], %(method)s) AS method,
    COALESCE((%(argss)s::varchar[])[g], %(args)s)::jsonb AS args
) j
ORDER BY g
RETURNING id
"""


# A periodic definition whose job_template is the row insert_jobs() would
# write for the call, as to_jsonb, less what each fire sets (the addon builds
# it the same way from the row Odoo would store).
INSERT_PERIODIC = """
WITH r AS (DELETE FROM queue_job WHERE id = %(job_id)s RETURNING *)
INSERT INTO queue_job_periodic (name, active, model_name, method_name, interval_seconds, cron,
                                time_zone, start, allow_overlap, channel, priority, max_retries,
                                job_template)
SELECT %(name)s, true, r.model_name, r.method_name, %(interval_seconds)s, %(cron)s,
       %(time_zone)s, COALESCE(%(start)s, now() AT TIME ZONE 'utc'), %(allow_overlap)s,
       %(channel)s, %(priority)s, %(max_retries)s,
       to_jsonb(r) - 'id' - 'uuid' - 'state' - 'date_created' - 'date_done'
FROM r
RETURNING id
"""


def insert_periodic(cr, name="periodic", *, interval_seconds=None, cron=None, time_zone=None,
                    start=None, allow_overlap=False, channel=None, priority=None,
                    max_retries=None, method_name="noop", args="[]", template_channel="root"):
    """A periodic definition (start defaults to now); returns its id.
    channel/priority/max_retries: the definition's (None: the template's)."""
    [job_id] = insert_jobs(cr, 1, method_name=method_name, args=args, channel=template_channel)
    cr.execute(INSERT_PERIODIC, {
        "job_id": job_id, "name": name, "interval_seconds": interval_seconds, "cron": cron,
        "time_zone": time_zone, "start": start, "allow_overlap": allow_overlap,
        "channel": channel, "priority": priority, "max_retries": max_retries})
    return cr.fetchone()[0]


def insert_jobs(cr, n=None, *, channel="root", priority=10, state="pending", eta=None,
                method_name="noop", args="[]", max_retries=5, date_created=None,
                spread_seconds=0.0, rows=None, sql_only=False):
    """Insert n job rows the way Job.store() fills them; returns their ids.

    date_created defaults to now; spread_seconds gives each next job a later
    date_created so FIFO order is well defined. rows: jobs that differ, as
    (channel, priority, date_created, eta, method_name, args) tuples (n is
    then their count). sql_only: the statement, not run (pgbench scripts).
    """
    cols = list(zip(*rows)) if rows else [None] * 6
    params = {"n": len(rows) if rows else n, "channel": channel, "priority": priority,
              "state": state, "eta": eta, "method": method_name, "args": args,
              "max_retries": max_retries, "created": date_created, "spread": spread_seconds,
              **{key: (list(col) if col is not None else None) for key, col in
                 zip(("channels", "priorities", "createds", "etas", "methods", "argss"), cols)}}
    if sql_only:
        return cr.mogrify(INSERT_JOBS, params).decode()
    cr.execute(INSERT_JOBS, params)
    return [r[0] for r in cr.fetchall()]


def stock_schema(version):
    """OCA queue_job's tables as the 17.0, 18.0 or 19.0 series creates them."""
    return (STOCK / f"queue_job_{version}.sql").read_text()


def build_db(cluster, name, version="17", *, trigger=True, migrate=True, template=None,
             is_template=False):
    """The one way to make a test database: stock queue_job of OCA series
    `version` (with its NOTIFY trigger unless trigger=False), or a copy of
    the database `template`; then our schema unless migrate=False.
    is_template: made a template (closed; discovery skips templates)."""
    cluster.createdb(name, template=template)
    db = Database(cluster, name, version)
    if template is None:
        db.execute(stock_schema(version))
        if trigger:
            db.execute(queries.sql_file("stock/notify_trigger.sql"))
    if migrate:
        db.migrate()
    if is_template:
        db.close()
        db.admin(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true')
    return db


class Database:
    """A test's handle on one database: a lazy connection and shortcuts."""

    def __init__(self, cluster, name, version):
        self.cluster = cluster
        self.name = name
        self.version = version  # "17", "18" or "19": OCA queue_job series
        self.conninfo = {"host": cluster.host, "port": cluster.port, "user": cluster.user}
        self._conn = None

    def connect(self, **kw):
        return dbmod.connect(self.conninfo, self.name, **kw)

    @property
    def conn(self):
        if self._conn is None or self._conn.closed:
            self._conn = self.connect()
        return self._conn

    def close(self):
        if self._conn is not None:
            self._conn.close()

    def admin(self, sql):
        """A statement run from the cluster's postgres database."""
        conn = dbmod.connect(self.conninfo, "postgres")
        try:
            with conn.cursor() as cr:
                cr.execute(sql)
        finally:
            conn.close()

    def drop(self):
        """Close, end every other session on the database, drop it."""
        self.close()
        self.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   f"WHERE datname = '{self.name}' AND pid <> pg_backend_pid()")
        self.admin(f'DROP DATABASE IF EXISTS "{self.name}"')

    def execute(self, sql, params=None):
        with self.conn.cursor() as cr:
            cr.execute(sql, params)
            if cr.description is not None:
                return cr.fetchall()
            return None

    def scalar(self, sql, params=None):
        return self.execute(sql, params)[0][0]

    def migrate(self):
        with self.conn.cursor() as cr:
            schema.migrate(cr, self.name)

    def uninstall_addon(self):
        """What uninstalling the addon does: its uninstall_hook, then what
        Odoo drops itself (the two fields' columns, the models' tables)."""
        with self.conn.cursor() as cr:
            schema.uninstall(cr)
        self.execute("ALTER TABLE queue_job DROP COLUMN claimed_by CASCADE, "
                     "DROP COLUMN claim_token CASCADE; DROP TABLE queue_job_runner CASCADE; "
                     "DROP TABLE queue_job_periodic CASCADE")

    @property
    def cli_args(self):
        return ["--db-host", self.conninfo["host"], "--db-port", str(self.conninfo["port"]),
                "--db-user", self.conninfo["user"], "--database", self.name]

    def insert_jobs(self, n, **kw):
        """insert_jobs() on this database."""
        with self.conn.cursor() as cr:
            return insert_jobs(cr, n, **kw)

    def insert_rows(self, rows):
        """Jobs that differ: rows of (channel, priority, date_created, eta,
        method_name, args); returns their ids in order."""
        return self.insert_jobs(None, rows=rows)

    def insert_periodic(self, name="periodic", notify=True, **kw):
        """insert_periodic() on this database, then the addon's NOTIFY
        (after the commit: this connection autocommits)."""
        with self.conn.cursor() as cr:
            pid = insert_periodic(cr, name, **kw)
        if notify:
            self.notify_periodic()
        return pid

    def notify_periodic(self):
        """What the addon sends after saving a definition."""
        self.execute(queries.get("hint_notify"), {"payload": PERIODIC_PAYLOAD})

    def states(self):
        return dict(self.execute("SELECT state, count(*) FROM queue_job GROUP BY state"))


def wait_until(predicate, timeout=30.0, interval=0.02, message="condition"):
    """Bounded wait for a condition (never a bare sleep as synchronization)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def new_uuid():
    return str(uuidlib.uuid4())


OperationalError = psycopg2.OperationalError


def max_overlap(intervals):
    """Most intervals open at one instant (an end at t frees before a start at t)."""
    events = sorted(itertools.chain(((s, 1) for s, _ in intervals), ((e, -1) for _, e in intervals)),
                    key=lambda ev: (ev[0], ev[1]))
    best = cur = 0
    for _, delta in events:
        cur += delta
        best = max(best, cur)
    return best


def http_get(port, path, timeout=10):
    """(status, body) of a GET on loopback; (None, "") when nothing answers."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return None, ""


_SAMPLE = re.compile(r'^(\w+)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(port):
    """A runner's /metrics samples: {(name, sorted (label, value) pairs): value}."""
    status, body = http_get(port, "/metrics")
    assert status == 200, (status, body)
    samples = {}
    for line in body.splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            name, labels, value = match.groups()
            samples[(name, tuple(sorted(_LABEL.findall(labels or ""))))] = float(value)
    return samples


# -- claims from several OS processes -----------------------------------------

def claim_until_empty(conninfo, dbname, batch, runner_id, start, results, prepared):
    """Claim in batches until a claim comes back empty; report what was claimed.
    prepared: the claims run as a notify-mode runner's in a busy spell
    (prepared.Plan), else as the plain statement (poll mode)."""
    conn = dbmod.connect(conninfo, dbname)
    if prepared:
        prepared_mod.attach(conn).busy = True
    errors, sizes, ids = [], [], []
    start.wait()
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


def concurrent_claims(database, processes, batch, timeout=300, prepared=(True, False)):
    """Run `processes` OS processes claiming until nothing is left; collect
    results. Process i claims prepared if prepared[i % len(prepared)]."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    # all connected before any claims (the race is the point, and spawned
    # imports would count in the wall time); a claimer that dies first breaks it
    start, results = ctx.Barrier(processes + 1, timeout=120), ctx.Queue()
    procs = [ctx.Process(target=claim_until_empty,
                         args=(database.conninfo, database.name, batch, 1000 + i, start, results,
                               prepared[i % len(prepared)]))
             for i in range(processes)]
    for p in procs:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    out = [results.get(timeout=timeout) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join(timeout=30)
    return out, wall


# -- runner and executor processes -------------------------------------------
class Proc:
    """A child process whose output goes to a file the caller can read
    (capture=False: to our own stdout/stderr, as the demo shows it)."""

    def __init__(self, args, env=None, executable=None, capture=True):
        self.log = (tempfile.NamedTemporaryFile(prefix="qjsl-", suffix=".log", delete=False)
                    if capture else None)
        full_env = dict(os.environ, PYTHONUNBUFFERED="1")
        full_env.update(env or {})
        self.args = args
        out = self.log if capture else None
        self.popen = subprocess.Popen([executable or sys.executable, *args], stdout=out,
                                      stderr=subprocess.STDOUT if capture else None,
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
        if self.log is not None:
            self.log.close()
            os.unlink(self.log.name)


def wait_port(port, timeout=30.0, proc=None):
    """Until something listens on loopback `port`; fails at once if `proc` exits."""
    def up():
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{' '.join(proc.args)} exited at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_until(up, timeout=timeout, message=f"port {port} to listen")


def db_args(cluster):
    return ["--db-host", cluster.host, "--db-port", str(cluster.port), "--db-user", cluster.user]


def start_executor(cluster, *extra, port=None, capture=True):
    port = port or free_port()
    proc = Proc(["-m", "jobrunner.testing.executor", "--port", str(port), *db_args(cluster), *extra],
                capture=capture)
    wait_port(port, proc=proc)
    proc.port = port
    return proc


def start_runner(cluster, databases, executor_port, *extra, env=None, capture=True):
    args = ["-m", "jobrunner", "run", *db_args(cluster), "--host", "127.0.0.1",
            "--port", str(executor_port)]
    for name in databases:
        args += ["--database", name]
    return Proc(args + list(extra), env=env, capture=capture)


def status(cluster, db, *extra):
    """stdout of `queue-job-runner status` on db (it must succeed)."""
    res = subprocess.run([sys.executable, "-m", "jobrunner", "status", *db_args(cluster),
                          "--database", db.name, *extra], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


def registered_runners(database):
    return database.scalar("SELECT count(*) FROM queue_job_runner")


@contextlib.contextmanager
def stuck_runner(cluster, db, procs, n_jobs, *extra, channel="root"):
    """A live runner holding n_jobs claims that stay `enqueued`: its executor
    accepts connections and never answers. Started first (no other runner)."""
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
