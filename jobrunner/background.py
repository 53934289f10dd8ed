"""A session's side task on its own greenlet (recovery, periodic timers):
started with the loop's session, stopped after the pass under way."""

import gevent
import gevent.event

from . import db as dbmod


class Background:
    def __init__(self, session):
        self.session = session
        self._stop = gevent.event.Event()
        self._greenlet = None

    def start(self):
        self._stop.clear()
        self._greenlet = gevent.spawn(self._guarded)

    def stop(self, timeout=10.0):
        """Stop after the pass under way, if any (a statement cut in the
        middle would break the connection the loop still uses)."""
        self._stop.set()
        self._stopping()
        if self._greenlet is not None:
            self._greenlet.join(timeout)
            self._greenlet.kill(block=False)
            self._greenlet = None

    def _stopping(self):
        """Hook: wake a wait other than self._stop's."""

    def _guarded(self):
        try:
            self._run()
        except (dbmod.OperationalError, dbmod.InterfaceError):
            return  # the loop sees the same connection fail and reconnects

    def _run(self):
        raise NotImplementedError
