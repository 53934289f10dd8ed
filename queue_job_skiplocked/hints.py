# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Wake-up hints sent after the enqueuing transaction commits (flag on).

One jobrunner.hint.Hinter per process: a NOTIFY from its own connection,
coalesced to at most one per hint_window per database, never on the commit
path of the transaction that wrote the jobs."""

import threading

from odoo.sql_db import connection_info_for

from jobrunner import logs, queries
from jobrunner.errors import first_line
from jobrunner.hint import Hinter

from . import flag

_log = logs.Log(__name__, inline=True)

_hinters = {}
_lock = threading.Lock()


def _hinter(dbname):
    with _lock:
        if dbname not in _hinters:
            _hinters[dbname] = Hinter(conninfo(dbname), window=flag.HINT_WINDOW)
        return _hinters[dbname]


def after_commit(cr):
    """Hint once the current transaction commits (once per transaction)."""
    if cr.postcommit.data.get("queue_job_skiplocked.hint"):
        return
    cr.postcommit.data["queue_job_skiplocked.hint"] = True
    dbname = cr.dbname
    cr.postcommit.add(lambda: _hinter(dbname).hint(dbname))


def send_now(dbname, statement):
    """statement(cr) now, on this process's hint connection (autocommit)."""
    _hinter(dbname).send_now(dbname, statement)


def periodic_after_commit(cr):
    """Once the current transaction commits, tell the runners that periodic
    definitions changed (payload 'periodic': they re-read them at once
    instead of at their next refresh). Not in the saving transaction: a
    NOTIFY there would serialize its commit."""
    if cr.postcommit.data.get("queue_job_skiplocked.periodic_hint"):
        return
    cr.postcommit.data["queue_job_skiplocked.periodic_hint"] = True
    dbname = cr.dbname
    cr.postcommit.add(lambda: send_periodic_hint(dbname))


def send_periodic_hint(dbname):
    try:
        send_now(dbname, lambda hcr: hcr.execute(queries.get("hint_notify"),
                                                 {"payload": "periodic"}))
    except Exception as exc:  # after the commit: only the runners' refresh is later
        _log.warning("periodic-hint-not-sent", "periodic hint not sent: %s", first_line(exc), db=dbname)


def conninfo(dbname):
    """libpq parameters Odoo itself uses for dbname (never logged)."""
    _db, info = connection_info_for(dbname)
    return {k: info.get(k) for k in ("host", "port", "user", "password")}
