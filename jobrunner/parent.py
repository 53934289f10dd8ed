"""The supervising server, when there is one (the Odoo addon's embedded
runner): the runner stops when that process is gone, as Odoo's own workers
do, instead of living on as an orphan after the server was killed."""

import os
import time

PARENT_PID_ENV = "QUEUE_JOB_RUNNER_PARENT_PID"


def watched_pid(environ=os.environ):
    value = environ.get(PARENT_PID_ENV, "")
    return int(value) if value.isdigit() else None


def watch(parent_pid, stopping, stop, log, interval=1.0):
    """Call stop() once the parent is gone (run in a greenlet of its own)."""
    while not stopping():
        if os.getppid() != parent_pid:
            log.warning("parent-gone", "parent process %s is gone: stopping", parent_pid)
            stop()
            return
        time.sleep(interval)
