# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The runner started by Odoo itself (flag on, queue_job_skiplocked in
server_wide_modules), as stock queue_job starts its own.

With the flag on, stock queue_job's runner is never started: its
``_is_runner_enabled`` answers False (prefork worker and thread alike), and
the stock trigger is gone, which makes any stock runner refuse the database.
Ours runs as a child process (``python -m jobrunner run``, gevent inside),
supervised from the server: started when the server starts (prefork master
or threaded server), restarted with backoff if it dies, SIGTERMed at stop.
``[queue_job] skip_locked_embedded_runner = False`` leaves the running to
separate ``queue-job-runner`` processes."""

import os
import subprocess
import sys
import threading
import time

import odoo
from odoo.service import server
from odoo.tools import config

from jobrunner import config as core_config, logs
from jobrunner.errors import ConfigError
from jobrunner.parent import PARENT_PID_ENV

from . import flag, series

_log = logs.Log(__name__, inline=True)


def runner_command():
    """argv and env of the child: Odoo's configuration resolved with OCA's
    precedence (env > [queue_job] > Odoo options), as the standalone runner."""
    options = {
        "db_host": config.get("db_host"), "db_port": config.get("db_port"),
        "db_user": config.get("db_user"), "db_password": config.get("db_password"),
        "db_name": ",".join(series.db_names()), "http_interface": config.get("http_interface"),
        "http_port": config.get("http_port"),
    }
    options = {k: str(v) for k, v in options.items() if v not in (None, False, "")}
    cfg = core_config.resolve({}, os.environ, flag.queue_job_config(), options)
    if cfg.executor_workers is None and (config.get("workers") or 0) > 0:
        # it dispatches to this very server: status can check its runners against
        # these workers (0, threaded: no fixed number to check against)
        cfg.executor_workers = config["workers"]
        cfg.sources["executor_workers"] = "[options] workers"
    if not cfg.log_file and config.get("logfile"):
        cfg.log_file = config["logfile"]  # its lines beside the server's, not on stderr
        cfg.sources["log_file"] = "[options] logfile"
    argv, env = core_config.child_command(cfg)
    env[PARENT_PID_ENV] = str(os.getpid())  # it stops if this server is killed
    return [sys.executable, "-m", "jobrunner", *argv], env


class RunnerProcess:
    """Keep one `queue-job-runner run` child alive while the server runs."""

    def __init__(self):
        self.proc = None
        self.stopping = False
        self._next_start = 0.0
        self._delay = 1.0

    def ensure(self):
        if self.stopping or (self.proc is not None and self.proc.poll() is None):
            return
        if self.proc is not None:
            _log.warning("runner-exited", "queue_job_skiplocked runner exited with %s; restarting "
                         "in %.0fs", self.proc.returncode, self._delay)
            if self.proc.returncode == 2:  # configuration error: it printed why
                self._delay = max(self._delay, 30.0)
            self.proc = None
            self._next_start = time.monotonic() + self._delay
            self._delay = min(60.0, self._delay * 2)
        if time.monotonic() < self._next_start:
            return
        try:
            argv, env = runner_command()
        except ConfigError as exc:
            _log.error("runner-not-started", "queue_job_skiplocked runner not started: %s", exc)
            self._next_start = time.monotonic() + 60
            return
        self.proc = subprocess.Popen(argv, env=dict(os.environ, **env))
        _log.info("runner-started", "queue_job_skiplocked runner started (pid %s)", self.proc.pid)

    def stop(self, timeout=None):
        self.stopping = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout or 60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


runner = RunnerProcess()
_thread = None


def enabled():
    return flag.is_on() and flag.embedded_runner() and not config["stop_after_init"]


def _supervise():
    while not runner.stopping:
        runner.ensure()
        time.sleep(2)


def _patch():
    try:
        from odoo.addons.queue_job import jobrunner as stock_jobrunner
    except ImportError:  # pragma: no cover - queue_job is a dependency
        stock_jobrunner = None
    if flag.is_on() and stock_jobrunner is not None:
        # the stock runner must not dispatch beside ours, thread or worker
        # (a threaded server then logs "NOT started, because the root
        # channel's capacity is set to 0": say who did it)
        stock_jobrunner._is_runner_enabled = lambda: False
        if not config["stop_after_init"] and not odoo.evented:  # once per server start
            _log.info("stock-runner-disabled", "queue_job_skiplocked flag on: stock queue_job "
                      "runner disabled")

    orig_process_spawn = server.PreforkServer.process_spawn
    orig_prefork_stop = server.PreforkServer.stop
    orig_threaded_start = server.ThreadedServer.start
    orig_threaded_stop = server.ThreadedServer.stop

    def process_spawn(srv):
        orig_process_spawn(srv)
        if enabled():
            runner.ensure()  # the master's loop calls this every second

    def prefork_stop(srv, graceful=True):
        if enabled():
            runner.stop()
        return orig_prefork_stop(srv, graceful)

    def threaded_start(srv, *args, **kwargs):
        global _thread
        res = orig_threaded_start(srv, *args, **kwargs)
        if enabled() and not kwargs.get("stop") and _thread is None:
            _thread = threading.Thread(target=_supervise, name="queue_job_skiplocked", daemon=True)
            _thread.start()
        return res

    def threaded_stop(srv):
        if enabled():
            runner.stop()
        return orig_threaded_stop(srv)

    server.PreforkServer.process_spawn = process_spawn
    server.PreforkServer.stop = prefork_stop
    server.ThreadedServer.start = threaded_start
    server.ThreadedServer.stop = threaded_stop


_patch()
