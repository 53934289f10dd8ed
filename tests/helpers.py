"""Test helpers: connections to the test database and job rows as Odoo writes them."""

import itertools
import time
import uuid as uuidlib

import psycopg2

from jobrunner import db as dbmod, schema


class Database:
    def __init__(self, cluster, name, version):
        self.cluster = cluster
        self.name = name
        self.version = version  # "17" or "18": OCA queue_job series
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
        Odoo drops itself (the two fields' columns, the model's table)."""
        with self.conn.cursor() as cr:
            schema.uninstall(cr)
        self.execute("ALTER TABLE queue_job DROP COLUMN claimed_by CASCADE, "
                     "DROP COLUMN claim_token CASCADE; DROP TABLE queue_job_runner CASCADE")

    @property
    def cli_args(self):
        return ["--db-host", self.conninfo["host"], "--db-port", str(self.conninfo["port"]),
                "--db-user", self.conninfo["user"], "--database", self.name]

    def insert_jobs(self, n, channel="root", priority=10, state="pending", eta=None,
                    method_name="noop", args="[]", max_retries=5, date_created=None,
                    spread_seconds=0.0):
        """Insert n job rows the way queue_job's Job.store() fills them.

        date_created defaults to now; spread_seconds gives each next job a
        later date_created so FIFO order is well defined.
        """
        return [r[0] for r in self.execute(
            """
            INSERT INTO queue_job (uuid, name, model_name, method_name, records, args, kwargs,
                                   func_string, state, priority, date_created, eta, retry,
                                   max_retries, channel, channel_method_name)
            SELECT md5(random()::text || g::text), 'job ' || g, 'queue.job', %(method)s,
                   '{}', %(args)s, '{}', 'noop()', %(state)s, %(priority)s,
                   COALESCE(%(created)s, now() AT TIME ZONE 'utc')
                       + make_interval(secs => g * %(spread)s),
                   %(eta)s, 0, %(max_retries)s, %(channel)s, '<queue.job>.' || %(method)s
            FROM generate_series(1, %(n)s) g
            ORDER BY g
            RETURNING id
            """,
            {"n": n, "channel": channel, "priority": priority, "state": state, "eta": eta,
             "method": method_name, "args": args, "max_retries": max_retries,
             "created": date_created, "spread": spread_seconds},
        )]

    def insert_rows(self, rows):
        """Jobs that differ: rows of (channel, priority, date_created, eta,
        method_name, args); returns their ids in order."""
        cols = list(zip(*rows))
        return [r[0] for r in self.execute(
            """
            INSERT INTO queue_job (uuid, name, model_name, method_name, records, args, kwargs,
                                   func_string, state, priority, date_created, eta, retry,
                                   max_retries, channel, channel_method_name)
            SELECT md5(random()::text || r.ord::text), 'job ' || r.ord, 'queue.job', r.method, '{}',
                   r.args::jsonb, '{}', 'f()', 'pending', r.priority, r.created, r.eta, 0, 5, r.channel,
                   '<queue.job>.' || r.method
            FROM unnest(%s::varchar[], %s::int[], %s::timestamp[], %s::timestamp[], %s::varchar[],
                        %s::varchar[]) WITH ORDINALITY AS r(channel, priority, created, eta, method, args, ord)
            ORDER BY r.ord
            RETURNING id
            """, [list(c) for c in cols])]

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
