"""The reference /queue_job/runjob executor: what Odoo's controller does to
the rows, without Odoo. Used by the tests, the demo and the benchmarks.

Per request (R18 controller semantics, plus the fencing token):
1. acquire: `enqueued` with this token -> `started` + queue_job_lock row,
   committed (SKIP LOCKED: a racing duplicate returns at once);
2. in a new transaction, hold the lock row FOR NO KEY UPDATE while the job
   runs; then `done` and commit; a RetryableJobError postpones the job
   (pending, eta, retry kept) and a failure marks it `failed`, both in a
   transaction of their own after the job's rolled back, as Odoo does.

Jobs are named callables picked by `method_name`; `args` is a JSON list.
Run: python -m jobrunner.testing.executor --port 8069 --db-host ... [--workers N]
"""

import argparse
import json
import logging
import os
import pathlib
import queue
import threading
import time
import traceback

from werkzeug.wrappers import Request, Response

from .. import db as dbmod, logs, queries, runjob, wait
from ..runjob import DB_HEADER, TOKEN_HEADER

_logger = logging.getLogger("jobrunner.executor")  # the HTTP server's own errors
_log = logs.Log("jobrunner.executor")


class RetryableJobError(Exception):
    def __init__(self, msg, seconds=600, ignore_retry=False):
        super().__init__(msg)
        self.seconds = seconds
        self.ignore_retry = ignore_retry


class FailedJobError(Exception):
    pass


def job_noop():
    return "ok"


def job_sleep(seconds=0.1):
    time.sleep(float(seconds))
    return f"slept {seconds}"


def job_sleep_ms(ms=0):
    time.sleep(float(ms) / 1000.0)
    return f"slept {ms} ms"


def job_spin_ms(ms=0):
    """Busy for `ms`, holding its process (no other request of it runs)."""
    end = time.perf_counter() + float(ms) / 1000.0
    while time.perf_counter() < end:
        pass
    return f"spun {ms} ms"


def job_fail(message="designed to fail"):
    raise ValueError(message)


def job_retryable(seconds=1):
    raise RetryableJobError("try again later", seconds=float(seconds))


JOBS = {
    "noop": job_noop,
    "sleep": job_sleep,
    "sleep_ms": job_sleep_ms,
    "spin_ms": job_spin_ms,
    "fail": job_fail,
    "retryable": job_retryable,
}


SQL = pathlib.Path(__file__).with_name("executor.sql")


def _q(name):
    """The executor's own named queries (test support: not in the runtime's sql/)."""
    return queries.load(SQL)[name]


def create_execution_log(cr):
    """The jobrunner_execution table (idempotent): one row per execution."""
    cr.execute(_q("execution_log_create"))


class ConnectionPool:
    """A bounded pool of autocommit connections per database."""

    def __init__(self, conninfo, size):
        self.conninfo = conninfo
        self.size = size
        self._pools = {}
        self._lock = threading.Lock()

    def _pool(self, dbname):
        with self._lock:
            if dbname not in self._pools:
                q = queue.LifoQueue()
                for _ in range(self.size):
                    q.put(None)
                self._pools[dbname] = q
            return self._pools[dbname]

    def get(self, dbname):
        conn = self._pool(dbname).get()
        if conn is None or conn.closed:
            try:
                conn = dbmod.connect(self.conninfo, dbname, application_name="jobrunner-executor")
            except Exception:
                self._pool(dbname).put(None)
                raise
        return conn

    def put(self, dbname, conn):
        if conn is not None and (conn.closed or conn.status != 1):  # 1: STATUS_READY
            conn.close()
            conn = None
        self._pool(dbname).put(conn)


class Executor:
    def __init__(self, conninfo, pool_size=64, workers=None, record=True, databases=None,
                 db_from="any"):
        self.pool = ConnectionPool(conninfo, pool_size)
        # Odoo's HTTP workers: a request waits for a free one before it starts
        self.workers = threading.BoundedSemaphore(workers) if workers else None
        self.record = record
        self.databases = set(databases or ())
        # "header": like Odoo 19, only X-Odoo-Database names the database
        self.db_from = db_from
        self.pid = os.getpid()
        self._prepared = set()

    # -- WSGI ---------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path != "/queue_job/runjob":
            return Response("not found", status=404)(environ, start_response)
        return self.runjob(request)(environ, start_response)

    def runjob(self, request):
        dbname = request.headers.get(DB_HEADER)
        if not dbname and self.db_from != "header":
            dbname = request.args.get("db")
        uuid = request.args.get("job_uuid")
        token = request.headers.get(TOKEN_HEADER) or request.args.get("token")
        if not dbname and uuid and self.db_from == "header":
            _log.warning("runjob-no-db", "runjob: no X-Odoo-Database header: no database", uuid=uuid)
            return Response("no database selected", status=404)
        if not dbname or not uuid:
            _log.warning("runjob-bad-request", "runjob: missing db or job_uuid parameter (%s)",
                         request.query_string[:200])
            return Response("missing db or job_uuid", status=400)
        if self.databases and dbname not in self.databases:
            _log.warning("runjob-unknown-db", "runjob: database not served here", db=dbname)
            return Response(f"database {dbname!r} not served", status=404)
        if self.workers:
            self.workers.acquire()
        try:
            return self._run(dbname, uuid, token)
        finally:
            if self.workers:
                self.workers.release()

    # -- the controller ----------------------------------------------------
    def _ensure_log(self, dbname, cr):
        if self.record and dbname not in self._prepared:
            create_execution_log(cr)
            self._prepared.add(dbname)

    def _run(self, dbname, uuid, token):
        try:
            conn = self.pool.get(dbname)
        except dbmod.OperationalError as exc:
            _log.warning("runjob-db-unreachable", "runjob: cannot connect to the database (%s): "
                         "job not run", str(exc).strip().splitlines()[0] if str(exc).strip() else "?",
                         db=dbname, uuid=uuid)
            return Response(f"database {dbname!r} unavailable", status=503)
        try:
            return self._acquire_and_perform(dbname, conn, uuid, token)
        except dbmod.OperationalError:
            conn.close()
            raise
        finally:
            self.pool.put(dbname, conn)

    def _acquire_and_perform(self, dbname, conn, uuid, token):
        with conn.cursor() as cr:
            self._ensure_log(dbname, cr)
            row = self._acquire(cr, uuid, token)
            if row is None:  # _acquire said why
                return Response("", status=200)
            job_id, method, args, retry, max_retries, channel, runner_id, enqueued_at = row
            # statements that return nothing travel together: fewer round trips
            log_id = None
            if self.record:
                cr.execute(_q("executor_add_lock_row") + "; " + _q("execution_log_start"),
                           {"id": job_id, "token": token, "runner": runner_id,
                            "channel": channel, "pid": self.pid, "enqueued_at": enqueued_at})
                log_id = cr.fetchone()[0]
                cr.execute("COMMIT")
            else:
                cr.execute(_q("executor_add_lock_row") + "; COMMIT", {"id": job_id})

            cr.execute("BEGIN; " + _q("executor_hold_lock"), {"id": job_id})
            if cr.fetchone() is None:
                cr.execute("ROLLBACK")
                _log.warning("job-lock-unavailable", "lock row not available, left to recovery",
                             db=dbname, uuid=uuid)
                return Response("", status=200)
            retry = (retry or 0) + 1  # Job.perform counts the attempt first
            try:
                result = self._perform(method, args, retry, max_retries)
            except RetryableJobError as exc:
                cr.execute("ROLLBACK")
                self._side(cr, "executor_postpone",
                           {"id": job_id, "retry": retry, "seconds": exc.seconds,
                            "result": str(exc)}, log_id, "retry")
                return Response("", status=200)
            except Exception as exc:  # job failure: recorded, then HTTP 500 like Odoo
                cr.execute("ROLLBACK")
                self._side(cr, "executor_failed",
                           {"id": job_id, "retry": retry,
                            "exc_name": f"{type(exc).__module__}.{type(exc).__name__}",
                            "exc_message": str(exc), "exc_info": traceback.format_exc()},
                           log_id, "failed")
                wait.notify_ended(cr, uuid)
                return Response("job failed", status=500, headers={runjob.STATE_HEADER: "failed"})
            done = _q("executor_done")
            if log_id is not None:
                done += "; " + _q("execution_log_end")
            cr.execute(done + "; COMMIT", {"id": job_id, "retry": retry, "result": str(result),
                                           "log_id": log_id, "outcome": "done"})
            wait.notify_ended(cr, uuid)  # after the commit, outside it: waiters wake
            return Response("", status=200, headers={runjob.STATE_HEADER: "done"})

    def _acquire(self, cr, uuid, token):
        """Acquire, leaving the transaction open on success; None if the job is
        not ours to run (runjob.acquire said why)."""
        def try_lock(cr):
            cr.execute("BEGIN; " + _q("executor_acquire"), {"uuid": uuid, "token": token, "pid": self.pid})
            row = cr.fetchone()
            if row is None:
                cr.execute("ROLLBACK")  # the refusal check and any retry run outside it
            return row

        return runjob.acquire(cr, uuid, token, try_lock, _log)

    def _perform(self, method, args, retry, max_retries):
        func = JOBS.get(method)
        if func is None:
            raise FailedJobError(f"unknown job method {method!r}; known: {', '.join(sorted(JOBS))}")
        try:
            params = json.loads(args) if args else []
        except ValueError as exc:
            raise FailedJobError(f"job args are not JSON: {args[:100]!r}") from exc
        try:
            return func(*params) if isinstance(params, list) else func(**params)
        except RetryableJobError as exc:
            if exc.ignore_retry or not max_retries:  # 0: retry forever
                raise
            if retry >= max_retries:
                raise FailedJobError(f"Max. retries ({max_retries}) reached: {exc}") from exc
            raise

    @staticmethod
    def _side(cr, query, params, log_id, outcome):
        """Retry/failure writes, in a transaction of their own after the job's
        was rolled back (Odoo uses a new cursor for the same reason)."""
        cr.execute(_q(query), params)
        if log_id is not None:
            cr.execute(_q("execution_log_end"), {"log_id": log_id, "outcome": outcome})


def serve(executor, host="127.0.0.1", port=8069, ready=None, listener=None):
    """Serve with gevent's WSGI server (the process must be green-patched)."""
    from gevent.pywsgi import WSGIServer

    server = WSGIServer(listener or (host, port), executor, log=None, error_log=_logger,
                        backlog=None if listener else 1024)
    server.start()
    if ready is not None:
        ready(server)
    server.serve_forever()


def prefork(host, port, processes):
    """One listening socket shared by `processes` processes, as Odoo's
    prefork workers share theirs: the kernel hands each connection to one.
    Returns the socket, in the parent and in each child; a child exits when
    its parent is gone."""
    import signal

    import gevent
    from gevent import socket

    from .. import parent

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(1024)
    children = []
    for _ in range(processes - 1):
        pid = gevent.fork()
        if pid == 0:
            ppid = os.getppid()
            gevent.spawn(parent.watch, ppid, lambda: False, lambda: os._exit(0), _log, 0.5)
            return listener
        children.append(pid)

    def stop(*_):
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    return listener


def main(argv=None):
    from .. import green

    green.patch()
    p = argparse.ArgumentParser(prog="python -m jobrunner.testing.executor", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8069)
    p.add_argument("--db-host")
    p.add_argument("--db-port", type=int)
    p.add_argument("--db-user")
    p.add_argument("--db-password")
    p.add_argument("--pool", type=int, default=64, help="DB connections per database")
    p.add_argument("--processes", type=int, default=1,
                   help="processes sharing the listening socket (pre-fork, like Odoo's workers)")
    p.add_argument("--workers", type=int, default=0,
                   help="requests run at once, like Odoo's HTTP workers (0: pool size)")
    p.add_argument("--database", action="append", help="serve only these databases")
    p.add_argument("--no-record", action="store_true", help="do not keep jobrunner_execution rows")
    p.add_argument("--db-from", choices=("any", "header"), default="any",
                   help="header: only X-Odoo-Database selects the database (Odoo 19)")
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    logs.setup(args.log_level.upper())
    conninfo = {"host": args.db_host, "port": args.db_port, "user": args.db_user,
                "password": args.db_password}
    listener = prefork(args.host, args.port, args.processes) if args.processes > 1 else None
    executor = Executor(conninfo, pool_size=args.pool, workers=args.workers or None,
                        record=not args.no_record, databases=args.database, db_from=args.db_from)

    def ready(server):
        print(f"executor listening on {args.host}:{server.server_port}", flush=True)

    serve(executor, args.host, args.port, ready, listener)


if __name__ == "__main__":
    main()
