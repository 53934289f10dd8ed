"""The runner loop: claim, dispatch, free slots, recover; one greenlet per
database, one process for all of them. Database work goes through claim.py
and the named queries; this module only decides when.

Wake-up rules: a full batch claims again at once; an empty claim sleeps with
jittered exponential backoff (poll_min .. poll_max); the earliest future eta
bounds the sleep; a freed slot or a NOTIFY hint wakes the loop at once.
"""

import http.client
import os
import signal
import socket
import time
from base64 import b64encode
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlencode

from . import __version__, claim as claim_mod, config as config_mod, db as dbmod, hint, queries, schema
from . import limits as limits_mod, logs, metrics
from .backoff import Backoff
from .errors import ConfigError

_log = logs.Log("jobrunner.runner")

KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3,
             "keepalives_count": 3, "connect_timeout": 10}
# The server's side of the same: a runner cut off by the network loses its
# session, hence its liveness lock, within ~20 s instead of the OS's 2 hours.
SERVER_KEEPALIVE = ("SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 3; "
                    "SET tcp_keepalives_count = 3")
WATCH_INTERVAL = 1.0  # re-check of started jobs whose HTTP request ended early
NOTIFY_PROBE_TIMEOUT = 5.0  # seconds for our own NOTIFY to come back at start
HTTP_KEEP = 64  # idle kept-alive connections to the executor, at most


@dataclass
class Inflight:
    db: str
    job: claim_mod.ClaimedJob
    bucket: int
    outcome: str | None = None  # set when the HTTP request ended: "http-<status>", "refused", "lost"
    next_check: float = 0.0


class Slots:
    """Node capacity shared by every database of this runner (OCA's root
    capacity spans databases too)."""

    def __init__(self, tree):
        import gevent.lock

        self.tree = tree
        self.lock = gevent.lock.Semaphore()
        self.inflight = {}  # (db, job id) -> Inflight

    def running(self):
        return self.tree.count_running(i.bucket for i in self.inflight.values())

    def add(self, db, job):
        self.inflight[(db, job.id)] = Inflight(db, job, self.tree.bucket_of(job.channel))

    def remove(self, db, job_id):
        return self.inflight.pop((db, job_id), None)

    def of(self, db):
        return [i for i in self.inflight.values() if i.db == db]


class DatabaseLoop:
    def __init__(self, runner, dbname):
        import gevent.event

        self.runner = runner
        self.cfg = runner.cfg
        self.dbname = dbname
        self.conn = None  # claims, releases, recovery
        self.ctl = None  # holds the liveness lock; LISTENs in notify mode
        self.runner_id = None
        self.wake = gevent.event.Event()
        self.wake_cause = None
        self.hold_claims_until = 0.0
        self.dispatch_backoff = Backoff(0.1, 5.0)
        self.last_ok = None  # monotonic time of the last statement the database answered
        self.string_limits = limits_mod.from_tree(runner.cfg.channel_tree)
        self.limits = limits_mod.Limits(self.string_limits)
        self.rows_supported = False  # queue_job_channel carries limits (18.0)
        self.next_limits_read = 0.0
        self.pending_groups = list(self.limits.claimable)
        # a group whose claim came back empty is tried again after a backoff
        # (global limits are usually full: do not lock it on every round), or
        # at once when one of our jobs in it ends, or when its throttle reopens
        self.group_retry = {}  # group -> (monotonic time, Backoff)
        self.log = _log.bind(db=dbname)

    # -- wake-ups ------------------------------------------------------------
    def poke(self, cause):
        if not self.wake.is_set():
            self.wake_cause = cause
            self.wake.set()

    def sleep(self, timeout, timer_cause="timer"):
        self.log.debug("sleep", "sleep %.3fs", timeout)
        woke = self.wake.wait(timeout=max(0.0, timeout))
        cause = self.wake_cause if woke else timer_cause
        self.wake.clear()
        self.wake_cause = None
        self.runner.stats[f"wakeup_{cause}"] += 1
        self.log.debug("wakeup", "woken by %s", cause)
        return cause

    # -- connections -----------------------------------------------------------
    def connect(self):
        self.conn = dbmod.connect(self.cfg.db, self.dbname, **KEEPALIVE)
        dbmod.check_server_version(self.conn)
        with self.conn.cursor() as cr:
            schema.check_ready(cr, self.dbname)
        self.rows_supported = True
        self.next_limits_read = 0.0
        self.read_limits()
        self.ctl = dbmod.connect(self.cfg.db, self.dbname,
                                 application_name="queue-job-runner-control", **KEEPALIVE)
        with self.conn.cursor() as cr:
            cr.execute(queries.get("runner_next_id"))
            self.runner_id = cr.fetchone()[0]
        self.log = _log.bind(db=self.dbname, runner=self.runner_id)
        with self.ctl.cursor() as cr:
            if self.cfg.wakeup == "notify":
                # a session lock, and LISTEN, on a connection of our own
                cr.execute(SERVER_KEEPALIVE)
                cr.execute(queries.get("runner_lock"), {"id": self.runner_id})
                cr.execute(f"LISTEN {hint.CHANNEL}")
            else:
                # poll mode works through a transaction pooler (PgBouncer):
                # the lock lives in a transaction kept open, which pins one
                # server connection; it takes no xid and keeps no snapshot,
                # so it holds back no vacuum
                cr.execute("BEGIN; SET LOCAL idle_in_transaction_session_timeout = 0; "
                           + SERVER_KEEPALIVE.replace("SET ", "SET LOCAL ") + "; "
                           + queries.get("runner_xact_lock"), {"id": self.runner_id})
        # the lock first, then the row: a visible row always has a holder,
        # alive or dead, never a runner that has not locked yet
        with self.conn.cursor() as cr:
            cr.execute(queries.get("runner_insert"), {
                "id": self.runner_id, "host": socket.gethostname(), "pid": os.getpid(),
                "version": __version__, "channels": self.cfg.channels})
        if self.cfg.wakeup == "notify":
            self.check_notifications()
        self.log.info("connected", "connected to %s (wakeup=%s, channels=%s)",
                      dbmod.describe(self.cfg.db, self.dbname), self.cfg.wakeup, self.cfg.channels)

    def check_notifications(self):
        """A NOTIFY must reach our LISTEN: through a transaction pooler it
        does not, and hints would silently never come."""
        from gevent.socket import wait_read

        probe = f"probe-{os.getpid()}-{self.runner_id}"
        with self.conn.cursor() as cr:
            cr.execute("SELECT pg_notify(%s, %s)", (hint.CHANNEL, probe))
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
            f"database {dbmod.describe(self.cfg.db, self.dbname)}: a NOTIFY did not reach this "
            "runner's LISTEN (a transaction-pooling PgBouncer in between?); use --wakeup poll")

    def read_limits(self):
        """Cross-runner channel limits: the channel string's, and the
        queue_job_channel rows' where the schema has them (re-read every
        limits.REFRESH seconds, so edits apply without a restart)."""
        if not self.rows_supported or time.monotonic() < self.next_limits_read:
            return
        with self.conn.cursor() as cr:
            rows = limits_mod.read_rows(cr)
        self.next_limits_read = time.monotonic() + limits_mod.REFRESH
        if rows is None:
            self.rows_supported = False
            rows = {}
        merged = limits_mod.Limits(limits_mod.merge(self.string_limits, rows))
        self.pending_groups = list(merged.claimable)  # until a claim says which have work
        if merged.by_name != self.limits.by_name:
            self.log.info("limits", "channel limits across runners: %s",
                          ", ".join(str(v) for v in merged.by_name.values()) or "none")
        self.limits = merged

    def close(self):
        self.last_ok = None
        for conn in (self.conn, self.ctl):
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # already broken: nothing to release
                    pass
        self.conn = self.ctl = None

    def watch_control(self):
        """Wait on the control connection: hints in notify mode, and in every
        mode its loss (which frees our liveness lock: we must reconnect)."""
        from gevent.socket import wait_read

        ctl = self.ctl
        try:
            while not self.runner.stopping and ctl is self.ctl:
                wait_read(ctl.fileno())
                ctl.poll()
                if ctl.notifies:
                    ctl.notifies.clear()
                    self.poke("hint")
        except Exception as exc:  # connection gone: the main loop reconnects
            if ctl is self.ctl and not self.runner.stopping:
                self.control_lost = exc
                self.poke("control-lost")

    # -- the loop --------------------------------------------------------------
    def run(self):
        import gevent

        reconnect = Backoff(0.5, 30.0)
        while True:
            try:
                self.control_lost = None
                self.connect()
                reconnect.reset()
                watcher = gevent.spawn(self.watch_control)
                try:
                    self.serve()
                finally:
                    watcher.kill(block=False)
                if self.runner.stopping:
                    self.shutdown()
                    return
            except ConfigError as exc:  # not retryable: stop the runner, exit 2
                self.close()
                self.runner.fatal = exc
                self.runner.stop(quiet=True)
                return
            except (dbmod.OperationalError, dbmod.InterfaceError, ConnectionLost) as exc:
                self.close()
                if self.runner.stopping:
                    return
                self.runner.stats["reconnects"] += 1
                delay = reconnect.next()
                self.log.error("db-unreachable", "database %s unreachable (%s); retrying in %.1fs",
                               dbmod.describe(self.cfg.db, self.dbname),
                               str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                               delay)
                self.sleep(delay, "reconnect")

    def serve(self):
        cfg = self.cfg
        idle = Backoff(cfg.poll_min, cfg.poll_max)
        next_recovery = 0.0
        while not self.runner.stopping:
            if self.control_lost is not None:
                raise ConnectionLost(f"control connection lost: {self.control_lost}")
            self.check_inflight()
            now = time.monotonic()
            if now >= next_recovery:
                self.recover()
                next_recovery = now + cfg.recovery_interval
            if now < self.hold_claims_until:
                self.sleep(min(self.hold_claims_until, next_recovery) - now, "dispatch-backoff")
                continue
            self.read_limits()
            asked, got, next_eta, reopen = self.claim()
            if self.runner.stopping:
                break
            if asked and got == asked:
                idle.reset()
                continue  # a full batch: there may be more
            if got:
                idle.reset()
            if asked == 0:
                timeout = next_recovery - time.monotonic()  # full: a freed slot wakes us
                cause = "timer"
            else:
                timeout, cause = idle.next(), "timer"
                if next_eta is not None:
                    until_eta = (next_eta - _utcnow_naive()).total_seconds()
                    if until_eta < timeout:
                        timeout, cause = max(0.0, until_eta) + 0.005, "eta"
                if reopen is not None and reopen < timeout:
                    timeout, cause = reopen + 0.005, "limited-group"
            if self.has_watch():
                timeout = min(timeout, WATCH_INTERVAL)
            self.sleep(timeout, cause)

    def claim(self):
        """One claim round for the free capacity (limits.claim_round).

        Returns (asked, got, next_eta, seconds until a limited group is due)."""
        slots = self.runner.slots
        with slots.lock:  # databases of this runner share the node capacity
            running = slots.running()
            free = slots.tree.node_frees(running)[0]  # root is always limited
            if not free:
                return 0, 0, None, None
            now = time.monotonic()
            try_groups = [g for g in self.pending_groups
                          if self.group_retry.get(g, (0.0, None))[0] <= now]
            t0 = time.perf_counter()
            result = limits_mod.claim_round(self.conn, self.runner_id, slots.tree, running,
                                            self.limits, free, try_groups)
            elapsed = time.perf_counter() - t0
            self.runner.stats["claim_seconds"] += elapsed
            self.runner.stats["claims"] += 1
            self.runner.claim_latency.observe(elapsed)
            self.last_ok = time.monotonic()
            for job in result.jobs:
                slots.add(self.dbname, job)
                self.log.debug("job-claimed", "claimed (priority %s)", job.priority,
                               uuid=job.uuid, channel=job.channel)
        if result.pending is not None:
            self.pending_groups = result.pending
        for group, (got, wake) in result.tried.items():
            if got:
                self.group_retry.pop(group, None)
            else:
                backoff = self.group_retry.get(group, (0.0, None))[1] or Backoff(0.05, 1.0)
                delay = wake if wake is not None else backoff.next()
                self.group_retry[group] = (now + delay, backoff)
        due = [t for g, (t, _b) in self.group_retry.items() if g in self.pending_groups]
        for job in result.jobs:
            self.runner.dispatch(self, job)
        self.runner.stats["claimed"] += len(result.jobs)
        return free, len(result.jobs), result.next_eta, (max(0.0, min(due) - now) if due else None)

    def has_watch(self):
        return any(i.outcome is not None for i in self.runner.slots.of(self.dbname))

    def check_inflight(self):
        """Free the slots of jobs whose claim is over; the database decides."""
        now = time.monotonic()
        due = [i for i in self.runner.slots.of(self.dbname)
               if i.outcome is not None and i.next_check <= now]
        if not due:
            return
        with self.conn.cursor() as cr:
            cr.execute(queries.get("inflight_states"), {"ids": [i.job.id for i in due]})
            rows = {r[0]: r[1:] for r in cr.fetchall()}
            to_release = []
            for item in due:
                state, token = rows.get(item.job.id, (None, None))
                if token != item.job.token or state not in ("enqueued", "started"):
                    self.runner.slots.remove(self.dbname, item.job.id)
                    self.group_retry.pop(self.limits.group_of(claim_mod.normalize_channel(
                        item.job.channel)), None)  # its group has a free slot now
                    self.runner.stats[f"finished_{state or 'gone'}"] += 1
                    self.log.debug("job-finished", "claim over: job %s", state or "deleted",
                                   uuid=item.job.uuid, channel=item.job.channel)
                elif state == "started":
                    item.next_check = now + WATCH_INTERVAL  # still running: watch it
                else:  # still enqueued with our token: the executor never took it
                    to_release.append(item)
            if to_release:
                claim_mod.release(cr, [i.job for i in to_release])
                for item in to_release:
                    self.runner.slots.remove(self.dbname, item.job.id)
                self.runner.stats["released"] += len(to_release)
                if any(_not_taken(i.outcome) for i in to_release):
                    delay = self.dispatch_backoff.next()
                    self.hold_claims_until = time.monotonic() + delay
                    self.log.warning("executor-not-taking", "executor did not take %d job(s) (%s); "
                                     "handed back, claiming again in %.1fs", len(to_release),
                                     to_release[0].outcome, delay, uuid=to_release[0].job.uuid)
            else:
                self.dispatch_backoff.reset()

    def recover(self):
        with self.conn.cursor() as cr:
            rows = claim_mod.recover(cr, self.runner_id)
        self.last_ok = time.monotonic()
        for job_id, uuid, why in rows:
            if why == "forgotten runner":
                self.log.warning("dead-runner-removed", "dead runner %s removed from the registry",
                                 job_id)
            else:
                self.runner.stats["recovered"] += 1
                self.log.warning("job-requeued", "job re-queued (dead %s)", why, uuid=uuid)

    def shutdown(self):
        """Graceful stop: hand back what no executor started, wait for the rest."""
        deadline = time.monotonic() + self.cfg.grace
        try:
            mine = self.runner.slots.of(self.dbname)
            with self.conn.cursor() as cr:
                released = set(claim_mod.release(cr, [i.job for i in mine]))
            for job_id in released:
                self.runner.slots.remove(self.dbname, job_id)
            self.log.info("stopping", "stopping: %d claim(s) handed back, %d running",
                          len(released), len(self.runner.slots.of(self.dbname)))
            while self.runner.slots.of(self.dbname) and time.monotonic() < deadline:
                for item in self.runner.slots.of(self.dbname):
                    if item.outcome is None:
                        item.next_check = 0.0
                        item.outcome = item.outcome or "stopping"
                self.check_inflight()
                self.sleep(min(0.2, max(0.0, deadline - time.monotonic())), "stopping")
            left = self.runner.slots.of(self.dbname)
            if left:
                self.log.warning("grace-over", "grace period over with %d job(s) still running in "
                                 "the executor", len(left), uuid=left[0].job.uuid)
            with self.conn.cursor() as cr:  # autocommit: ctl may be inside its lock transaction
                cr.execute(queries.get("runner_delete"), {"id": self.runner_id})
        except (dbmod.OperationalError, dbmod.InterfaceError) as exc:
            self.log.warning("stop-db-error", "stop: database error (%s); unstarted claims will be "
                             "recovered by other runners", str(exc).strip().splitlines()[0])
        finally:
            self.close()


class ConnectionLost(Exception):
    pass


def _not_taken(outcome):
    """The executor could not take the job: back off before claiming again."""
    return outcome in ("refused", "lost") or outcome.startswith("http-5")


def _utcnow_naive():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).replace(tzinfo=None)


class Runner:
    def __init__(self, cfg):
        self.cfg = cfg
        self.slots = Slots(cfg.channel_tree)
        self.stopping = False
        self.fatal = None
        self.stats = Counter()
        self.claim_latency = metrics.Histogram()
        self.loops = []
        self._idle_http = []  # kept-alive connections to the executor
        self._auth = None
        if cfg.http_auth_user:
            token = b64encode(f"{cfg.http_auth_user}:{cfg.http_auth_password or ''}".encode()).decode()
            self._auth = {"Authorization": "Basic " + token}

    # -- dispatch --------------------------------------------------------------
    def dispatch(self, loop, job):
        import gevent

        self.stats["dispatched"] += 1
        gevent.spawn(self._http_runjob, loop, job)

    def _http_runjob(self, loop, job):
        query = urlencode({"db": loop.dbname, "job_uuid": job.uuid, "token": job.token})
        try:
            outcome = self._get("/queue_job/runjob?" + query)
        except ConnectionRefusedError:
            outcome = "refused"
        except (OSError, http.client.HTTPException) as exc:
            # a timeout or a cut is not a failure by itself: the database decides
            outcome = "lost"
            loop.log.info("runjob-no-answer", "runjob request ended without answer: %s", exc,
                          uuid=job.uuid)
        item = self.slots.inflight.get((loop.dbname, job.id))
        if item is not None and item.job.token == job.token:
            item.outcome = outcome
            item.next_check = 0.0
        loop.poke("slot")

    def _get(self, path):
        """GET on a kept-alive connection when one is idle. A kept connection
        the server closed meanwhile fails before any answer: the request is
        sent once more on a new one (a duplicate can only be refused: the
        token lets one request start the job)."""
        cfg = self.cfg
        for attempt in (0, 1):
            conn = self._idle_http.pop() if (self._idle_http and not attempt) else None
            reused = conn is not None
            if conn is None:
                cls = http.client.HTTPSConnection if cfg.scheme == "https" else http.client.HTTPConnection
                conn = cls(cfg.host, cfg.port, timeout=cfg.http_timeout)
            try:
                conn.request("GET", path, headers=self._auth or {})
                response = conn.getresponse()
                response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if reused:
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            if response.will_close or len(self._idle_http) >= HTTP_KEEP:
                conn.close()
            else:
                self._idle_http.append(conn)
            return f"http-{response.status}"

    # -- lifecycle ---------------------------------------------------------------
    def stop(self, *_, quiet=False):
        if not self.stopping and not quiet:
            _log.info("stop-requested", "stop requested: no new claims; waiting up to %.0fs for "
                      "jobs in flight", self.cfg.grace)
        self.stopping = True
        for loop in self.loops:
            loop.poke("stop")

    def run(self, databases):
        import gevent

        self.loops = [DatabaseLoop(self, name) for name in databases]
        greenlets = [gevent.spawn(loop.run) for loop in self.loops]
        gevent.joinall(greenlets, raise_error=False)
        if self.fatal is not None:
            raise self.fatal
        for g in greenlets:
            if g.exception is not None:
                raise g.exception
        return 0


def discover_databases(cfg):
    """Databases to serve: --database, else db_name, else every database with
    queue_job installed (refusing, with the fix, those lacking our schema)."""
    if cfg.databases:
        return cfg.databases
    found = []
    for name in dbmod.list_databases(cfg.db):
        try:
            conn = dbmod.connect(cfg.db, name, connect_timeout=10)
        except dbmod.OperationalError:
            continue
        try:
            with conn.cursor() as cr:
                if not schema.queue_job_installed(cr):
                    continue
                if not schema.schema_ready(cr):
                    _log.error("schema-missing", "database has queue_job but not the "
                               "queue_job_skiplocked schema; skipped (run: queue-job-runner "
                               "migrate --database %s)", name, db=name)
                    continue
                found.append(name)
        finally:
            conn.close()
    if not found:
        raise ConfigError("no database with queue_job and the queue_job_skiplocked schema found; "
                          "give --database NAME (and run queue-job-runner migrate)")
    return found


# Set by a supervising server (the Odoo addon's embedded runner): the runner
# stops when that process is gone, as Odoo's own workers do, instead of
# living on as an orphan after the server was killed.
PARENT_PID_ENV = "QUEUE_JOB_RUNNER_PARENT_PID"


def watch_parent(runner, parent_pid, interval=1.0):
    while not runner.stopping:
        if os.getppid() != parent_pid:
            _log.warning("parent-gone", "parent process %s is gone: stopping", parent_pid)
            runner.stop()
            return
        time.sleep(interval)


def main(args):
    from . import green

    cfg = config_mod.build(args)
    # first: gevent's import may warn
    logs.setup(cfg.log_level, cfg.log_format, cfg.log_file, cfg.sources.get("log_file"))
    green.patch()
    green.DB_TIMEOUT = cfg.db_timeout
    if cfg.channel_tree.root_capacity == 0:
        _log.warning("capacity-zero", "channels %r give root capacity 0: this runner claims "
                     "nothing", cfg.channels)
    runner = Runner(cfg)
    signal.signal(signal.SIGTERM, runner.stop)
    signal.signal(signal.SIGINT, runner.stop)
    if cfg.metrics_port:
        metrics.serve(runner, cfg.metrics_host, cfg.metrics_port)
    parent = os.environ.get(PARENT_PID_ENV)
    if parent and parent.isdigit():
        import gevent

        gevent.spawn(watch_parent, runner, int(parent))
    while True:
        try:
            databases = discover_databases(cfg)
            break
        except dbmod.OperationalError as exc:
            _log.error("server-unreachable", "database server %s unreachable (%s); retrying in 5s",
                       dbmod.describe(cfg.db), str(exc).strip().splitlines()[0])
            if runner.stopping:
                return 0
            time.sleep(5)
    return runner.run(databases)
