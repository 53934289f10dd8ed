"""Waiting for a job to end, by uuid, with a timeout: for application code
(an API route that enqueues, commits and waits) and for scripts
(``queue-job-runner wait``).

A wait holds no transaction and no snapshot between its checks (each check
is one autocommit statement). It wakes on a "job ended" hint (a NOTIFY with
the job's uuid, sent after the job's own commit) and checks again on a
backoff of its own (50 ms to 2 s), so a lost hint, or a PgBouncer in
transaction pooling that never delivers one, still ends the wait. Every
waiter of a process on one database shares one listening connection and
one checking connection: 200 concurrent waits cost two connections.
"""

import select
import threading
import time
from dataclasses import dataclass

from . import db as dbmod, queries
from .backoff import Backoff

TERMINAL = ("done", "failed", "cancelled")
CHECK_BACKOFF = (0.05, 2.0)


@dataclass(frozen=True)
class Outcome:
    uuid: str
    state: str
    result: str | None
    exc_name: str | None
    exc_message: str | None
    date_done: object

    @property
    def ended(self):
        return self.state in TERMINAL

    def as_dict(self):
        return {"uuid": self.uuid, "state": self.state, "result": self.result,
                "exc_name": self.exc_name, "exc_message": self.exc_message,
                "date_done": self.date_done.isoformat() if self.date_done else None}


class Waiters:
    """The waits of one process on one database."""

    def __init__(self, conninfo, dbname, listen=True):
        self.conninfo, self.dbname = conninfo, dbname
        self._check_lock = threading.Lock()
        self._check_conn = None
        self._events = {}  # uuid -> set of threading.Event
        self._events_lock = threading.Lock()
        self._listener = None
        self._listen = listen  # False: poll only (e.g. behind transaction pooling)

    def wait(self, uuid, timeout):
        """The job's Outcome as soon as it ended, or its current one once
        `timeout` seconds passed; None for an unknown uuid."""
        event = threading.Event()
        with self._events_lock:
            self._events.setdefault(uuid, set()).add(event)
        if self._listen:
            self._ensure_listener()
        backoff = Backoff(*CHECK_BACKOFF)
        deadline = time.monotonic() + max(0.0, timeout)
        try:
            while True:
                outcome = self.check(uuid)
                left = deadline - time.monotonic()
                if outcome is None or outcome.ended or left <= 0:
                    return outcome
                event.wait(min(backoff.next(), left))
                event.clear()
        finally:
            with self._events_lock:
                waiting = self._events.get(uuid, set())
                waiting.discard(event)
                if not waiting:
                    self._events.pop(uuid, None)

    def check(self, uuid):
        with self._check_lock:
            for attempt in (0, 1):
                try:
                    if self._check_conn is None or self._check_conn.closed:
                        self._check_conn = dbmod.connect(self.conninfo, self.dbname,
                                                         application_name="queue-job-wait")
                    with self._check_conn.cursor() as cr:
                        cr.execute(queries.get("job_outcome"), {"uuid": uuid})
                        row = cr.fetchone()
                    return Outcome(uuid, *row) if row else None
                except (dbmod.OperationalError, dbmod.InterfaceError):
                    self._check_conn = None  # made again once; a second failure is the caller's
                    if attempt:
                        raise
        return None  # pragma: no cover - the loop returns or raises

    def _ensure_listener(self):
        with self._events_lock:
            if self._listener is None or not self._listener.is_alive():
                self._listener = threading.Thread(target=self._listen_loop, daemon=True,
                                                  name="queue-job-wait-listener")
                self._listener.start()

    def _listen_loop(self):
        """Hints to the waiting events; gone when nobody waits for a while
        (the backoff checks carry on without it)."""
        conn = None
        try:
            conn = dbmod.connect(self.conninfo, self.dbname, application_name="queue-job-wait")
            with conn.cursor() as cr:
                cr.execute(queries.get("listen_ended"))
            idle_since = None
            while True:
                if select.select([conn], [], [], 1.0) != ([], [], []):
                    conn.poll()
                    uuids = {n.payload for n in conn.notifies}
                    conn.notifies.clear()
                    with self._events_lock:
                        for event in (e for u in uuids for e in self._events.get(u, ())):
                            event.set()
                with self._events_lock:
                    if self._events:
                        idle_since = None
                    elif idle_since is None:
                        idle_since = time.monotonic()
                    elif time.monotonic() - idle_since > 30:
                        self._listener = None
                        return
        except (dbmod.OperationalError, dbmod.InterfaceError):
            return  # the checks go on; the next wait starts a new listener
        finally:
            if conn is not None:
                conn.close()


_waiters = {}
_lock = threading.Lock()


def waiters(conninfo, dbname, listen=True):
    """The process's Waiters for this database (made once)."""
    key = (dbname, tuple(sorted((conninfo or {}).items())), listen)
    with _lock:
        if key not in _waiters:
            _waiters[key] = Waiters(conninfo, dbname, listen)
        return _waiters[key]


def notify_ended(cr, uuid):
    """The "job ended" hint, on an autocommit cursor after the job's commit."""
    cr.execute(queries.get("ended_notify"), {"uuid": uuid})
