"""The wake-up hint sent after an enqueuing commit (jobrunner.hint.Hinter,
used by the addon in every Odoo process)."""

import json
import subprocess
import sys

from jobrunner import hint

from jobrunner.testing.fixtures import wait_until


def _listener(db):
    conn = db.connect()
    with conn.cursor() as cr:
        cr.execute(f"LISTEN {hint.CHANNEL}")
    return conn


def _notifications(conn):
    conn.poll()
    return [n for n in conn.notifies if n.channel == hint.CHANNEL]


def test_a_process_that_exits_right_after_its_commit_still_hints(qdb):
    # odoo shell, a script, a worker at its request limit: the hint is sent
    # from a daemon thread that dies with the process, unless flushed at exit
    listener = _listener(qdb)
    code = ("import json, sys; from jobrunner.hint import Hinter; "
            "Hinter(json.loads(sys.argv[1])).hint(sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, json.dumps(qdb.conninfo), qdb.name],
                   check=True, timeout=60)
    assert wait_until(lambda: _notifications(listener), timeout=10, message="the hint")
    listener.close()


def test_hints_are_coalesced(qdb):
    listener = _listener(qdb)
    hinter = hint.Hinter(qdb.conninfo, interval=0.5)
    for _ in range(200):
        hinter.hint(qdb.name)
    wait_until(lambda: _notifications(listener), timeout=10, message="the first hint")
    hinter.flush()
    assert 1 <= hinter.sent <= 3  # 200 hints in well under the window: one or two NOTIFYs
