"""The wake-up hint: a NOTIFY sent after the enqueuing transaction commits,
from a connection of its own, coalesced to a bounded rate per process.

A NOTIFY inside a transaction takes a cluster-wide lock at commit and
serializes every notifying commit; sent here, it never sits on the commit
path of the transactions that write jobs. Runners poll anyway: a lost or
coalesced hint only costs latency.
"""

import atexit
import threading
import time

from . import db as dbmod, logs, queries
from .errors import first_line
from .settings import BY_NAME

WINDOW = BY_NAME["hint_window"].default

CHANNEL = "queue_job_skiplocked"
# runs inside Odoo, whose formatter knows no fields
_log = logs.Log(__name__, inline=True)


class Hinter:
    """Call hint(dbname) after a commit that created or re-queued jobs.

    A daemon thread sends the first hint after a quiet `window` at once;
    the hints that follow within the window coalesce into one NOTIFY per
    database at its end: at most one per database per window.
    """

    def __init__(self, conninfo, window=WINDOW):
        self.conninfo = conninfo
        self.window = window
        self._pending = set()
        self._sending = set()  # taken by the loop, maybe not sent yet
        self._cond = threading.Condition()
        self._conns = {}
        self._send_lock = threading.Lock()  # the loop and flush() share connections
        self._thread = None
        self.sent = 0
        # a daemon thread dies with its process: a short-lived one (odoo
        # shell, a script, a recycled worker) would lose its last hint
        atexit.register(self.flush)

    def hint(self, dbname):
        with self._cond:
            self._pending.add(dbname)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="queue-job-hint", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _loop(self):
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                batch, self._pending = self._pending, set()
                self._sending = batch
            for dbname in batch:
                self._send(dbname)
            with self._cond:
                self._sending = set()
            time.sleep(self.window)  # hints of this window wait for its end

    def flush(self):
        """Send the hints not sent yet, now, from the calling thread (one
        the loop is sending may go twice: a hint only wakes runners)."""
        with self._cond:
            batch, self._pending = self._pending | self._sending, set()
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
