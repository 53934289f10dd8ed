"""Periodic jobs fired by the runners: the timers of one database session.

Every runner holds the active definitions in memory, with the time each is
due; it sends nothing to the database between fires. The set is rebuilt at
start from the definitions and their latest decided tick (missed ticks:
only the latest fires), and re-read when the addon notifies a change
(NOTIFY 'periodic') and every `periodic_refresh` seconds. A fire names the
latest tick <= now, computed from the definition alone, so all runners name
the same tick and the statement `periodic_fire` lets one of them decide it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
import time

import gevent.event

from . import db as dbmod, queries, schedule
from .background import Background
from .errors import ConfigError, first_line


@dataclass
class Timer:
    id: int
    name: str
    key: tuple  # (interval_seconds, cron, time_zone, start) as read: what a fire must still match
    schedule: object
    due: datetime | None  # naive UTC, database clock; None: no tick ahead
    catching_up: bool = False  # due from the latest decided tick (start): missed ticks are logged


def read(cr):
    """[(id, name, key, has_template, last_tick)], and the database's clock."""
    cr.execute(queries.get("periodic_definitions"))
    rows = cr.fetchall()
    return [(r[0], r[1], tuple(r[2:6]), r[6], r[7]) for r in rows], (rows[0][8] if rows else None)


def fire(cr, timer, tick, runner_id):
    """Decide one tick: (outcome, job uuid, previous decided tick)."""
    interval_seconds, cron, time_zone, start = timer.key
    cr.execute(queries.get("periodic_fire"), {
        "periodic_id": timer.id, "tick": tick, "runner_id": runner_id,
        "interval_seconds": interval_seconds, "cron": cron, "time_zone": time_zone,
        "start": start})
    return cr.fetchone()


class Periodic(Background):
    def __init__(self, session, refresh, stats, on_fired):
        super().__init__(session)
        self.refresh = refresh  # seconds between re-reads of the definitions
        self.stats = stats
        self.on_fired = on_fired  # a job was created here: claim now
        self.timers = {}  # definition id -> Timer
        self.offset = timedelta(0)  # the database's clock minus ours
        self._wake = gevent.event.Event()
        self._reread = True
        self._invalid = {}  # id -> key already reported as invalid (once per version)

    def changed(self):
        """A definition changed (NOTIFY): re-read them now."""
        self._reread = True
        self._wake.set()

    def _stopping(self):
        self._wake.set()

    def now(self):
        return datetime.now(timezone.utc).replace(tzinfo=None) + self.offset

    def _run(self):
        self.load(starting=True)
        next_read = time.monotonic() + self.refresh
        while not self._stop.is_set():
            if self._reread or time.monotonic() >= next_read:
                self.load(starting=False)
                next_read = time.monotonic() + self.refresh
            now = self.now()
            for timer in sorted(self.timers.values(), key=lambda t: t.due or now):
                if timer.due is not None and timer.due <= now and not self._stop.is_set():
                    self.fire_one(timer, now)
            dues = [t.due for t in self.timers.values() if t.due is not None]
            timeout = next_read - time.monotonic()
            if dues:
                timeout = min(timeout, (min(dues) - self.now()).total_seconds())
            self._wake.wait(max(0.0, timeout))
            self._wake.clear()

    def load(self, starting):
        """(Re)build the timers. At start a definition is due at the tick
        after its latest decided one (in the past after a downtime: it fires
        at once, for the latest tick only). On a re-read an unchanged timer
        is kept; an edited definition, or one seen again (reactivated), is
        due at its next future tick: an edit is not a downtime."""
        self._reread = False
        with self.session.cursor() as cr:
            rows, db_now = read(cr)
        if db_now is not None:
            self.offset = db_now - datetime.now(timezone.utc).replace(tzinfo=None)
        now, timers, log = self.now(), {}, self.session.log
        for pid, name, key, has_template, last_tick in rows:
            old = self.timers.get(pid)
            if old is not None and old.key == key:
                timers[pid] = old
                continue
            try:
                if not has_template:
                    raise ConfigError("its job_template is empty; save the definition again in Odoo")
                sched = schedule.build(*key)
            except ConfigError as exc:
                if self._invalid.get(pid) != key:
                    self._invalid[pid] = key
                    log.warning("periodic-invalid", "periodic job %s (#%s) not timed: %s", name,
                                pid, exc)
                continue
            catching_up = starting or (old is None and last_tick is None)
            due = schedule.first_due(sched, last_tick) if catching_up else sched.next_after(now)
            timers[pid] = Timer(pid, name, key, sched, due, catching_up)
        if timers.keys() != self.timers.keys() or starting:
            log.info("periodic-loaded", "%d periodic job(s) timed", len(timers))
        self.timers = timers

    def fire_one(self, timer, now):
        tick = timer.schedule.latest(now)
        if tick is None:  # a clock step back: wait for the tick again
            return
        log = self.session.log
        try:
            with self.session.cursor() as cr:
                outcome, uuid, previous = fire(cr, timer, tick, self.session.runner_id)
        except (dbmod.OperationalError, dbmod.InterfaceError):
            raise
        except dbmod.DatabaseError as exc:  # the template does not fit queue_job: next tick
            log.error("periodic-failed", "periodic job %s (#%s): tick %s not fired: %s",
                      timer.name, timer.id, tick, first_line(exc))
            timer.due = timer.schedule.next_after(tick)
            return
        if outcome in ("gone", "changed"):  # deactivated, deleted or edited meanwhile
            self.timers.pop(timer.id, None)
            self.changed()
            return
        timer.due = timer.schedule.next_after(tick)
        if outcome == "taken":  # another runner decided it
            return
        missed = timer.schedule.count_between(previous, tick) if timer.catching_up else 0
        timer.catching_up = False
        if missed:
            log.info("periodic-caught-up", "periodic job %s (#%s): %d tick(s) missed while no "
                     "runner fired them; only the latest, %s, is decided", timer.name, timer.id,
                     missed, tick)
        if outcome == "skipped":
            self.stats["periodic_skipped"] += 1
            log.warning("periodic-skipped", "periodic job %s (#%s): tick %s skipped: its previous "
                        "job is still running", timer.name, timer.id, tick, uuid=uuid)
        else:
            self.stats["periodic_fired"] += 1
            log.info("periodic-fired", "periodic job %s (#%s): tick %s fired", timer.name,
                     timer.id, tick, uuid=uuid)
            self.on_fired()
