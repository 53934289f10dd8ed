"""Recovery, one per database session, on its own timer (River's rescuer
shape): dead runners' unstarted claims back to pending and dead executions
requeued (query `recover`). Every runner runs it; the statement itself keeps
two recoverers off the same rows."""

import gevent
import gevent.event

from . import claim, db as dbmod

# the reasons query `recover` gives for a started job whose execution died
DEAD_EXECUTION = ("dead execution", "dead execution, failed as JobFoundDead")


class Recovery:
    def __init__(self, session, interval, stats, on_requeued):
        self.session = session
        self.interval = interval
        self.stats = stats
        self.on_requeued = on_requeued  # jobs went back to pending: claim now
        self._stop = gevent.event.Event()
        self._greenlet = None

    def start(self):
        self._stop.clear()
        self._greenlet = gevent.spawn(self._run)

    def stop(self, timeout=10.0):
        """Stop after the pass under way, if any (a statement cut in the
        middle would break the connection the loop still uses)."""
        self._stop.set()
        if self._greenlet is not None:
            self._greenlet.join(timeout)
            self._greenlet.kill(block=False)
            self._greenlet = None

    def _run(self):
        while not self._stop.is_set():
            try:
                self.run_once()
            except (dbmod.OperationalError, dbmod.InterfaceError):
                return  # the loop sees the same connection fail and reconnects
            self._stop.wait(self.interval)

    def run_once(self):
        with self.session.cursor() as cr:
            rows = claim.recover(cr, self.session.runner_id)
        log = self.session.log
        requeued = dead = 0
        for job_id, uuid, why in rows:
            if why == "forgotten runner":
                log.warning("dead-runner-removed", "dead runner %s removed from the registry", job_id)
            else:
                requeued += 1
                dead += why in DEAD_EXECUTION
                log.warning("job-requeued", "job re-queued (%s)", why, uuid=uuid)
        self.stats["recovered"] += requeued
        self.stats["dead_executions"] += dead
        if requeued:
            self.on_requeued()
