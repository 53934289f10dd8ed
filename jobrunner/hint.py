"""The wake-up hint: a NOTIFY sent after the enqueuing transaction commits,
from a connection of its own, coalesced to one per window per host.

A NOTIFY inside a transaction takes a cluster-wide lock at commit and
serializes every notifying commit; sent here, it never sits on the commit
path of the transactions that write jobs. Runners poll anyway: a lost or
coalesced hint only costs latency.
"""

import atexit
import fcntl
import hashlib
import os
import struct
import tempfile
import threading
import time

from . import db as dbmod, logs, queries
from .errors import first_line
from .settings import BY_NAME

WINDOW = BY_NAME["hint_window"].default

CHANNEL = "queue_job_skiplocked"
# runs inside Odoo, whose formatter knows no fields
_log = logs.Log(__name__, inline=True)


class HostGate:
    """When this host last sent a hint to one database, shared by all its
    processes (Odoo's workers each have a Hinter) through an 8-byte file
    under a lock: one process's NOTIFY after a commit serves every commit of
    the host before it, so the host sends one hint per window, not one per
    process (16 workers: 20 hints/s instead of 320)."""

    DIR = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()

    def __init__(self, conninfo, dbname, window):
        where = f"{conninfo.get('host')}:{conninfo.get('port')}/{dbname}"
        name = "queue_job_skiplocked-hint-" + hashlib.sha1(where.encode()).hexdigest()[:16]
        self.path = os.path.join(self.DIR, name)
        self.window = window
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)

    def decide(self, requested):
        """For a hint asked at `requested` (time.time(), after its commit):
        "skip" if a hint went out since, "send" (recorded now: whoever asked
        before now may skip), or the seconds to wait for the window's end."""
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            last = self.last()
            now = time.time()
            if last >= requested:
                return "skip"
            if 0 <= now - last < self.window:
                return last + self.window - now
            os.pwrite(self.fd, struct.pack("d", now), 0)
            return "send"
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def last(self):
        """time.time() of the host's last hint to this database (0: none)."""
        raw = os.pread(self.fd, 8, 0)
        return struct.unpack("d", raw)[0] if len(raw) == 8 else 0.0


class Hinter:
    """Call hint(dbname) after a commit that created or re-queued jobs.

    A daemon thread sends the first hint after a quiet `window` of the host
    at once; the hints that follow within the window, from this process or
    any other of the host (HostGate), are served by one NOTIFY per database
    at its end. Without a usable gate file: the same, per process.
    """

    def __init__(self, conninfo, window=WINDOW):
        self.conninfo = conninfo
        self.window = window
        self._pending = {}  # dbname -> when the first hint not sent yet was asked
        self._sending = set()  # taken by the loop, maybe not sent yet
        self._gates = {}  # dbname -> HostGate, or None: per process
        self._cond = threading.Condition()
        self._conns = {}
        self._send_lock = threading.Lock()  # the loop and flush() share connections
        self._thread = None
        self.sent = 0
        self.skipped = 0  # served by another process's hint
        # a daemon thread dies with its process: a short-lived one (odoo
        # shell, a script, a recycled worker) would lose its last hint
        atexit.register(self.flush)

    def hint(self, dbname):
        with self._cond:
            self._pending.setdefault(dbname, time.time())
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="queue-job-hint", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _loop(self):
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                batch, self._pending = self._pending, {}
                self._sending = set(batch)
            waits = {}
            for dbname, requested in batch.items():
                gate = self._gate(dbname)
                verdict = gate.decide(requested) if gate else "send"
                if verdict == "send":
                    self._send(dbname)
                elif verdict == "skip":
                    self.skipped += 1
                else:
                    waits[dbname] = requested, verdict
            with self._cond:
                self._sending = set()
                for dbname, (requested, _wait) in waits.items():  # asked again at the window's end
                    self._pending[dbname] = min(requested, self._pending.get(dbname, requested))
            # hints of this window wait for its end (bounded: a clock stepped back)
            time.sleep(min(min((w for _r, w in waits.values()), default=self.window), self.window))

    def _gate(self, dbname):
        if dbname not in self._gates:
            try:
                self._gates[dbname] = HostGate(self.conninfo, dbname, self.window)
            except OSError as exc:
                self._gates[dbname] = None
                _log.warning("hint-gate-unusable", "hints coalesced per process, not per host: %s",
                             first_line(exc), db=dbname)
        return self._gates[dbname]

    def flush(self):
        """Send the hints not sent yet, now, from the calling thread (one
        the loop is sending may go twice: a hint only wakes runners)."""
        with self._cond:
            batch, self._pending = set(self._pending) | self._sending, {}
        for dbname in batch:
            self._send(dbname)

    def _send(self, dbname):
        try:
            self.send_now(dbname, notify)
            self.sent += 1
        except Exception as exc:  # a lost hint is only latency: polling covers it
            _log.warning("hint-not-sent", "wake-up hint not sent: %s",
                         first_line(exc), db=dbname)

    def send_now(self, dbname, statement):
        """Run statement(cr) now, from the calling thread, on this process's
        autocommit hint connection to dbname (e.g. the runjob controller's
        job-ended NOTIFY: one statement, no Odoo cursor). A kept connection
        the server closed meanwhile is replaced once; an error is raised."""
        with self._send_lock:
            for attempt in (0, 1):
                conn = self._conns.get(dbname)
                reused = conn is not None and not conn.closed
                if not reused:
                    conn = self._conns[dbname] = dbmod.connect(
                        self.conninfo, dbname, application_name="queue-job-hint")
                try:
                    with conn.cursor() as cr:
                        statement(cr)
                    return
                except Exception:
                    self._conns.pop(dbname, None)
                    conn.close()
                    if not (reused and attempt == 0):
                        raise


def notify(cr):
    """Send one hint on an autocommit cursor (outside any job-writing transaction)."""
    cr.execute(queries.get("hint_notify"), {"payload": ""})
