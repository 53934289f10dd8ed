"""The loop of one database: wake, claim, dispatch, free slots, stop. It
decides when; the session, claim.py and the planner do the work.

Wake-up rules: a full batch claims again at once; an empty claim sleeps with
jittered exponential backoff (poll_min .. poll_max); the earliest future eta
bounds the sleep; a freed slot, a NOTIFY hint or requeued jobs wake the
loop at once.
"""

import time
from dataclasses import dataclass
from datetime import datetime, timezone

import gevent.event
import gevent.lock

from . import claim, config, db as dbmod, limits as limits_mod, metrics
from .backoff import Backoff
from .errors import ConfigError, ConnectionLost, first_line
from .periodic import Periodic
from .plan import ClaimPlanner
from .recovery import Recovery
from .session import Session

WATCH_INTERVAL = 1.0  # re-check of started jobs whose HTTP request ended early


@dataclass
class Inflight:
    db: str
    job: claim.ClaimedJob
    bucket: int
    outcome: str | None = None  # set when the HTTP request ended: "http-<status>", "refused", "lost"
    next_check: float = 0.0


class Slots:
    """Node capacity shared by every database of this runner (OCA's root
    capacity spans databases too). Only the loops write it."""

    def __init__(self, tree):
        self.tree = tree
        self.lock = gevent.lock.Semaphore()
        self.inflight = {}  # (db, job id) -> Inflight

    def running(self):
        return self.tree.count_running(i.bucket for i in self.inflight.values())

    def add(self, db, job):
        item = self.inflight[(db, job.id)] = Inflight(db, job, self.tree.bucket_of(job.channel))
        return item

    def remove(self, db, job_id):
        return self.inflight.pop((db, job_id), None)

    def of(self, db):
        return [i for i in self.inflight.values() if i.db == db]


class DatabaseLoop:
    def __init__(self, runner, dbname):
        self.runner = runner
        self.cfg = runner.cfg
        self.slots = runner.slots
        self.stats = runner.stats
        self.dbname = dbname
        self.wake = gevent.event.Event()
        self.wake_cause = None
        self.session = Session(self.cfg, dbname, on_hint=lambda: self.poke("hint"),
                               on_lost=self._control_lost, on_reload=self._reload,
                               on_periodic=self._periodic_changed)
        self.gauges = metrics.DatabaseGauges(self.session)  # read by /metrics
        self.periodic = None  # the session's periodic timers, while it is open
        self.control_lost = None
        self.fatal = None  # the ConfigError that ended this loop
        self.string_limits = limits_mod.from_tree(self.cfg.channel_tree)
        self.planner = ClaimPlanner(self.cfg.channel_tree, limits_mod.Limits(self.string_limits))
        self.db_cap = config.db_capacity(self.cfg, dbname)  # db_max_capacity (None: no cap)
        self.rows_supported = False  # queue_job_channel carries limits (18.0, not 17.0/19.0)
        self.next_limits_read = 0.0

    @property
    def log(self):
        return self.session.log

    # -- wake-ups ------------------------------------------------------------
    def poke(self, cause):
        if not self.wake.is_set():
            self.wake_cause = cause
            self.wake.set()

    def _reload(self):
        self.next_limits_read = 0.0  # read the channel records now, not at the next refresh
        self.poke("reload")

    def _periodic_changed(self):
        if self.periodic is not None:
            self.periodic.changed()

    def _control_lost(self, exc):
        if not self.runner.stopping:
            self.control_lost = exc
            self.poke("control-lost")

    def sleep(self, timeout, timer_cause="timer"):
        self.log.debug("sleep", "sleep %.3fs", timeout)
        woke = self.wake.wait(timeout=max(0.0, timeout))
        cause = self.wake_cause if woke else timer_cause
        self.wake.clear()
        self.wake_cause = None
        self.stats[f"wakeup_{cause}"] += 1
        self.log.debug("wakeup", "woken by %s", cause)
        return cause

    # -- the loop --------------------------------------------------------------
    def run(self):
        """Serve the database until the runner stops; reconnect on database
        errors. A ConfigError is not retryable: it stops the runner, which
        then exits 2 with it."""
        reconnect = Backoff(0.5, 30.0)
        while True:
            side = []  # the session's side tasks: recovery, periodic timers
            try:
                self.control_lost = None
                self.session.open()
                self.rows_supported, self.next_limits_read = True, 0.0
                reconnect.reset()
                side = [Recovery(self.session, self.cfg.recovery_interval, self.stats,
                                 on_requeued=lambda: self.poke("recovered")),
                        Periodic(self.session, self.cfg.periodic_refresh, self.stats,
                                 on_fired=lambda: self.poke("periodic"))]
                self.periodic = side[1]
                for task in side:
                    task.start()
                self.serve()
                self._stop_side(side)
                if self.runner.stopping:
                    self.shutdown()
                    return
            except ConfigError as exc:  # kept, not raised: gevent would print a traceback
                self._stop_side(side, timeout=0)
                self.session.close()
                self.fatal = exc
                self.runner.stop(quiet=True)
                return
            except (dbmod.OperationalError, dbmod.InterfaceError, ConnectionLost) as exc:
                self._stop_side(side, timeout=0)
                self.session.close()
                if self.runner.stopping:
                    return
                self.stats["reconnects"] += 1
                delay = reconnect.next()
                self.log.error("db-unreachable", "database %s unreachable (%s); retrying in %.1fs",
                               self.session.where, first_line(exc), delay)
                self.sleep(delay, "reconnect")

    def _stop_side(self, side, timeout=10.0):
        self.periodic = None
        for task in side:
            task.stop(timeout)

    def serve(self):
        cfg = self.cfg
        if self.db_cap == 0:
            self.log.warning("db-capacity-zero", "db_max_capacity gives this database capacity 0: "
                             "no job of it runs here")
        idle = Backoff(cfg.poll_min, cfg.poll_max)
        while not self.runner.stopping:
            if self.control_lost is not None:
                raise ConnectionLost(f"control connection lost: {self.control_lost}")
            self.check_inflight()
            dispatcher = self.runner.dispatcher
            now = time.monotonic()
            if all(t.held(now) for t in dispatcher.targets):  # none took our last jobs
                self.sleep(min(t.hold_until for t in dispatcher.targets) - now, "dispatch-backoff")
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
                timeout, cause = cfg.poll_max, "timer"  # full: a freed slot wakes us
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
            holds = [t.hold_until for t in self.runner.dispatcher.targets if t.hold_until > now]
            if holds and min(holds) - now < timeout:  # a waiting executor's channels reopen
                timeout, cause = min(holds) - now + 0.005, "dispatch-backoff"
            self.sleep(timeout, cause)

    def read_limits(self):
        """Cross-runner channel limits: the channel string's, and the
        queue_job_channel rows' where the schema has them (re-read every
        limits.REFRESH seconds, so edits apply without a restart)."""
        if not self.rows_supported or time.monotonic() < self.next_limits_read:
            return
        with self.session.cursor() as cr:
            rows = limits_mod.read_rows(cr)
        self.next_limits_read = time.monotonic() + limits_mod.REFRESH
        if rows is None:
            self.rows_supported = False
            rows = {}
        merged = limits_mod.Limits(limits_mod.merge(self.string_limits, rows))
        if merged.by_name != self.planner.limits.by_name:
            self.log.info("limits", "channel limits across runners: %s",
                          ", ".join(str(v) for v in merged.by_name.values()) or "none")
        self.planner.set_limits(merged)

    def claim(self):
        """One claim round for the free capacity (claim.claim_round).

        Returns (asked, got, next_eta, seconds until a limited group is due)."""
        slots, planner = self.slots, self.planner
        with slots.lock:  # databases of this runner share the node capacity
            running = slots.running()
            free = planner.free(running)
            if self.db_cap is not None:  # this database's share of the node
                free = min(free, self.db_cap - len(slots.of(self.dbname)))
            if free <= 0:
                return 0, 0, None, None
            now = time.monotonic()
            # an executor in a not-taken streak: its channels wait, the others go on
            planner.closed = self.runner.dispatcher.held_channels(
                (ch.name for ch in planner.tree.channels), now)
            t0 = time.perf_counter()
            with self.session.connection() as conn:
                result = claim.claim_round(conn, self.session.runner_id, planner, running, free,
                                           planner.groups_due(now))
            elapsed = time.perf_counter() - t0
            self.stats["claim_seconds"] += elapsed
            self.stats["claims"] += 1
            self.runner.claim_latency.observe(elapsed)
            items = [slots.add(self.dbname, job) for job in result.jobs]
        reopen = planner.after_round(result.pending, result.tried, now)
        for item in items:
            self.log.debug("job-claimed", "claimed (priority %s)", item.job.priority,
                           uuid=item.job.uuid, channel=item.job.channel)
            self.runner.dispatcher.send(self.dbname, self.session.series, item.job,
                                        self._answered(item), self.log)
        self.stats["claimed"] += len(items)
        return free, len(items), result.next_eta, reopen

    def _answered(self, item):
        def done(outcome):
            if self.slots.inflight.get((item.db, item.job.id)) is item:  # not freed meanwhile
                item.outcome = outcome
                item.next_check = 0.0
                self.poke("slot")
        return done

    def has_watch(self):
        return any(i.outcome is not None for i in self.slots.of(self.dbname))

    def check_inflight(self):
        """Free the slots of jobs whose claim is over: at once when the
        executor said the job ended, else when the database says so."""
        now = time.monotonic()
        due = [i for i in self.slots.of(self.dbname) if i.outcome is not None and i.next_check <= now]
        ended = [i for i in due if i.outcome.startswith("ended-")]
        target_of = self.runner.dispatcher.target_of
        for item in ended:
            self._finished(item, item.outcome[len("ended-"):])
        for target in {target_of(i.job.channel) for i in ended}:
            target.taken(self.log)
        due = [i for i in due if not i.outcome.startswith("ended-")]
        if not due:
            return
        with self.session.cursor() as cr:
            rows = claim.states(cr, [i.job.id for i in due])
            to_release, taken = [], []
            for item in due:
                state, token = rows.get(item.job.id, (None, None))
                if state in ("started", "done", "failed"):
                    taken.append(item)
                if token != item.job.token or state not in ("enqueued", "started"):
                    self._finished(item, state)
                elif state == "started":
                    item.next_check = now + WATCH_INTERVAL  # still running: watch it
                else:  # still enqueued with our token: the executor never took it
                    to_release.append(item)
            if to_release:
                claim.release(cr, [i.job for i in to_release])
        for target in {target_of(i.job.channel) for i in taken}:
            target.taken(self.log)
        for item in to_release:
            self.slots.remove(self.dbname, item.job.id)
        self.stats["released"] += len(to_release)
        # every answer but "job taken" backs off its executor: 4xx, 5xx, refused, no answer
        by_outcome = {}
        for item in to_release:
            if item.outcome != "stopping":
                key = (target_of(item.job.channel), item.outcome)
                by_outcome.setdefault(key, []).append(item)
        for (target, outcome), items in by_outcome.items():
            target.not_taken(outcome, len(items), self.dbname, self.log, items[0].job.uuid)

    def _finished(self, item, state):
        self.slots.remove(self.dbname, item.job.id)
        self.planner.job_ended(item.job.channel)
        self.stats[f"finished_{state or 'gone'}"] += 1
        self.log.debug("job-finished", "claim over: job %s", state or "deleted",
                       uuid=item.job.uuid, channel=item.job.channel)

    def shutdown(self):
        """Graceful stop: hand back what no executor started, wait for the rest."""
        deadline = time.monotonic() + self.cfg.grace
        try:
            with self.session.cursor() as cr:
                released = set(claim.release(cr, [i.job for i in self.slots.of(self.dbname)]))
            for job_id in released:
                self.slots.remove(self.dbname, job_id)
            self.log.info("stopping", "stopping: %d claim(s) handed back, %d running",
                          len(released), len(self.slots.of(self.dbname)))
            while self.slots.of(self.dbname) and time.monotonic() < deadline:
                for item in self.slots.of(self.dbname):
                    if item.outcome is None:
                        item.next_check = 0.0
                        item.outcome = "stopping"
                self.check_inflight()
                self.sleep(min(0.2, max(0.0, deadline - time.monotonic())), "stopping")
            left = self.slots.of(self.dbname)
            if left:
                self.log.warning("grace-over", "grace period over with %d job(s) still running in "
                                 "the executor", len(left), uuid=left[0].job.uuid)
            self.session.deregister()
        except (dbmod.OperationalError, dbmod.InterfaceError) as exc:
            self.log.warning("stop-db-error", "stop: database error (%s); unstarted claims will be "
                             "recovered by other runners", first_line(exc))
        finally:
            self.session.close()


def _utcnow_naive():
    return datetime.now(timezone.utc).replace(tzinfo=None)
