"""One database's session for one runner: its two connections, the
liveness lock in both wake-up modes, the registry row, LISTEN and the
NOTIFY probe, and a watch of the control connection that reports hints and
its loss through callbacks. The loop decides when; this module talks to
the database."""

import contextlib
import os
import socket
import time

import gevent
import gevent.lock
from gevent.socket import wait_read

from . import __version__, db as dbmod, logs, prepared, queries, schema
from .errors import ConfigError

_log = logs.Log("jobrunner.runner")

KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3,
             "keepalives_count": 3, "connect_timeout": 10}
# The server's side of the same: a runner cut off by the network loses its
# session, hence its liveness lock, within ~20 s instead of the OS's 2 hours.
SERVER_KEEPALIVE = {"tcp_keepalives_idle": 10, "tcp_keepalives_interval": 3,
                    "tcp_keepalives_count": 3}
NOTIFY_PROBE_TIMEOUT = 5.0  # seconds for our own NOTIFY to come back at start


class Session:
    """`conn` (autocommit) serves claims, hand-backs and recovery, one
    statement at a time through cursor(); `ctl` holds the liveness lock and,
    in notify mode, LISTENs."""

    def __init__(self, cfg, dbname, on_hint, on_lost, on_reload, on_periodic=lambda: None):
        self.cfg = cfg
        self.dbname = dbname
        self.on_hint = on_hint  # a hint arrived
        self.on_lost = on_lost  # (exc) the control connection, hence our liveness, is gone
        self.on_reload = on_reload  # queue_job 18.0's channel records changed
        self.on_periodic = on_periodic  # a periodic job definition changed (the addon says so)
        self.conn = None
        self.ctl = None
        self.runner_id = None
        self.previous_id = None  # the id of our last connection: kept across reconnects
        self.series = None  # the database's queue_job series (17, 18, 19; None: unknown)
        self.last_ok = None  # monotonic time of the last statement the database answered
        self.log = _log.bind(db=dbname)
        self._busy = gevent.lock.Semaphore()  # the loop and recovery share conn
        self._watcher = None

    @property
    def where(self):
        return dbmod.describe(self.cfg.db, self.dbname)

    @contextlib.contextmanager
    def connection(self):
        """`conn`, one user at a time (a claim round, a recovery pass)."""
        with self._busy:
            yield self.conn
        if self.conn is not None:  # a scrape may find it closed (metrics.DatabaseGauges)
            self.last_ok = time.monotonic()

    @contextlib.contextmanager
    def cursor(self):
        with self.connection() as conn, conn.cursor() as cr:
            yield cr

    def open(self):
        cfg = self.cfg
        self.conn = dbmod.connect(cfg.db, self.dbname, **KEEPALIVE)
        dbmod.check_server_version(self.conn)
        with self.cursor() as cr:
            schema.check_ready(cr, self.dbname)
            self.series = schema.queue_job_series(cr)
            if self.previous_id is None:
                cr.execute(queries.get("runner_next_id"))
                self.runner_id = cr.fetchone()[0]
            else:
                self.runner_id = self.previous_id  # kept unless still held (_lock)
        self.log = _log.bind(db=self.dbname, runner=self.runner_id)
        self.ctl = dbmod.connect(cfg.db, self.dbname, application_name="queue-job-runner-control",
                                 **KEEPALIVE)
        with self.ctl.cursor() as cr:
            self._lock(cr)
        # the lock first, then the row: a visible row always has a holder,
        # alive or dead, never a runner that has not locked yet
        with self.cursor() as cr:
            cr.execute(queries.get("runner_insert"), {
                "id": self.runner_id, "host": socket.gethostname(), "pid": os.getpid(),
                "version": __version__, "channels": cfg.channels,
                "executor": f"{cfg.host}:{cfg.port}", "executor_workers": cfg.executor_workers})
        if cfg.wakeup == "notify":
            self._check_notifications()
            # the notification came back: a session of our own, no transaction
            # pooler, so the claim may run prepared (plan_cache_mode: 12+)
            if self.conn.server_version >= 120000:
                with self.connection() as conn:
                    prepared.attach(conn)
        self._watcher = gevent.spawn(self._watch, self.ctl)
        self.log.info("connected", "connected to %s (queue_job %s, wakeup=%s, channels=%s)",
                      self.where, self.series or "of unknown series", cfg.wakeup, cfg.channels)

    def _lock(self, cr):
        """Take the liveness lock on `ctl`: our previous id if it is free
        (one identity per process across reconnects), else a new id."""
        notify = self.cfg.wakeup == "notify"
        if notify:
            # a session lock, and LISTEN, on a connection of our own
            cr.execute("; ".join(f"SET {k} = {v}" for k, v in SERVER_KEEPALIVE.items()))
        if self.previous_id is not None:
            params = {"id": self.previous_id}
            if notify:
                cr.execute(queries.get("runner_try_lock"), params)
            else:
                self._begin(cr, "runner_try_xact_lock", params)
            if cr.fetchone()[0]:
                self.runner_id = self.previous_id
                self._locked(cr)
                return
            if not notify:
                cr.execute("ROLLBACK")
            with self.cursor() as other:
                other.execute(queries.get("runner_next_id"))
                self.runner_id = other.fetchone()[0]
            self.log = _log.bind(db=self.dbname, runner=self.runner_id)
            self.log.warning("runner-id-changed", "runner id %s is still held by this process's "
                             "previous connection; now runner %s (was %s)", self.previous_id,
                             self.runner_id, self.previous_id)
        params = {"id": self.runner_id}
        if notify:
            cr.execute(queries.get("runner_lock"), params)
        else:
            # poll mode works through a transaction pooler (PgBouncer): the
            # lock lives in a transaction kept open, which pins one server
            # connection; it takes no xid and keeps no snapshot, so it holds
            # back no vacuum
            self._begin(cr, "runner_xact_lock", params)
        self._locked(cr)

    @staticmethod
    def _begin(cr, query, params):
        dbmod.begin(cr, queries.get(query), params, idle_in_transaction_session_timeout=0,
                    **SERVER_KEEPALIVE)

    def _locked(self, cr):
        self.previous_id = self.runner_id
        if self.cfg.wakeup == "notify":
            cr.execute(queries.get("listen"))

    def _check_notifications(self):
        """A NOTIFY must reach our LISTEN: through a transaction pooler it
        does not, and hints would silently never come."""
        probe = f"probe-{os.getpid()}-{self.runner_id}"
        with self.cursor() as cr:
            cr.execute(queries.get("hint_notify"), {"payload": probe})
        deadline = time.monotonic() + NOTIFY_PROBE_TIMEOUT
        while time.monotonic() < deadline:
            try:
                wait_read(self.ctl.fileno(), timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            self.ctl.poll()
            if any(n.payload == probe for n in self.ctl.notifies):
                self.ctl.notifies.clear()
                return
        raise ConfigError(
            f"database {self.where}: a NOTIFY did not reach this runner's LISTEN (a "
            "transaction-pooling PgBouncer in between?); use --wakeup poll")

    def _watch(self, ctl):
        """Wait on the control connection: hints in notify mode, and in every
        mode its loss (which frees our liveness lock: we must reconnect)."""
        try:
            while ctl is self.ctl:
                wait_read(ctl.fileno())
                ctl.poll()
                if ctl.notifies:
                    kinds = {_kind(n) for n in ctl.notifies}
                    ctl.notifies.clear()
                    if "reload" in kinds:
                        self.on_reload()
                    if "periodic" in kinds:
                        self.on_periodic()
                    if "hint" in kinds:
                        self.on_hint()
        except Exception as exc:  # connection gone: the loop reconnects
            if ctl is self.ctl:
                self.on_lost(exc)

    def deregister(self):
        """A clean stop: our registry row goes (autocommit: ctl may be inside
        its lock transaction)."""
        with self.cursor() as cr:
            cr.execute(queries.get("runner_delete"), {"id": self.runner_id})

    def close(self):
        self.last_ok = None
        ctl, self.ctl = self.ctl, None  # first: the watcher sees it is not current
        if self._watcher is not None:
            self._watcher.kill(block=False)
            self._watcher = None
        for conn in (self.conn, ctl):
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # already broken: nothing to release
                    pass
        self.conn = None


RELOAD_CHANNEL, RELOAD_PAYLOAD = "queue_job", "reload"
PERIODIC_PAYLOAD = "periodic"  # on our channel: the addon saved a periodic definition


def _kind(notification):
    """"hint" (ours), "periodic" (ours: definitions changed), "reload"
    (queue_job 18.0 channel edits) or None: a stock trigger's uuid on
    queue_job's channel is neither."""
    if notification.channel == RELOAD_CHANNEL:
        return "reload" if notification.payload == RELOAD_PAYLOAD else None
    return "periodic" if notification.payload == PERIODIC_PAYLOAD else "hint"
