"""queue-job-runner: run (default), migrate, status, demo.

Exit codes: 0 clean stop, 2 configuration error, 1 anything else.
"""

import argparse
import sys

from . import __version__, config as config_mod, db, logs, schema
from .errors import ConfigError

_log = logs.Log("jobrunner")


def _add_common(p):
    p.add_argument("-c", "--config", help="odoo.conf to read [queue_job] and [options] from")
    p.add_argument("-d", "--database", action="append",
                   help="database to serve (repeatable); default: odoo.conf db_name, "
                        "else every database with queue_job installed")
    p.add_argument("--db-host", dest="db_host")
    p.add_argument("--db-port", dest="db_port")
    p.add_argument("--db-user", dest="db_user")
    p.add_argument("--db-password", dest="db_password")
    p.add_argument("--log-level", dest="log_level", help="DEBUG, INFO (default), WARNING, ERROR")
    p.add_argument("--log-format", dest="log_format",
                   help="text (default) or json: one object per line, with event, db, runner, uuid")
    p.add_argument("--log-file", dest="log_file",
                   help="append log lines to this file instead of stderr (reopened after logrotate)")


def _add_run(p):
    p.add_argument("--channels", help="OCA channels, e.g. root:4,root.sub:2 (node capacity)")
    p.add_argument("--scheme")
    p.add_argument("--host", help="Odoo host for /queue_job/runjob")
    p.add_argument("--port", help="Odoo port for /queue_job/runjob")
    p.add_argument("--http-auth-user", dest="http_auth_user")
    p.add_argument("--http-auth-password", dest="http_auth_password")
    p.add_argument("--wakeup", help="notify (LISTEN for hints, default) or poll (never LISTEN)")
    p.add_argument("--poll-min", dest="poll_min", help="idle backoff floor, seconds (0.05)")
    p.add_argument("--poll-max", dest="poll_max", help="idle backoff cap, seconds (5)")
    p.add_argument("--grace", help="seconds to wait for jobs in flight at stop (30)")
    p.add_argument("--recovery-interval", dest="recovery_interval",
                   help="seconds between dead-runner/dead-job checks (8)")
    p.add_argument("--http-timeout", dest="http_timeout",
                   help="seconds before a runjob request is abandoned (default: none)")
    p.add_argument("--metrics-port", dest="metrics_port",
                   help="serve /metrics (Prometheus) and /healthz on this port (off by default)")
    p.add_argument("--metrics-host", dest="metrics_host",
                   help="address for --metrics-port (127.0.0.1; 0.0.0.0 for a Kubernetes probe)")
    p.add_argument("--db-timeout", dest="db_timeout",
                   help="seconds without answer from PostgreSQL before the connection is "
                        "dropped and made again (20)")


def parser():
    p = argparse.ArgumentParser(prog="queue-job-runner", description=__doc__)
    p.add_argument("--version", action="version", version=__version__)
    sub = p.add_subparsers(dest="command")
    run = sub.add_parser("run", help="claim and dispatch jobs (default)")
    _add_common(run)
    _add_run(run)
    mig = sub.add_parser("migrate", help="apply our schema additions (idempotent)")
    _add_common(mig)
    st = sub.add_parser("status", help="jobs, channels and runners per database")
    _add_common(st)
    st.add_argument("--json", action="store_true")
    demo = sub.add_parser("demo", help="throwaway PostgreSQL + executor + 3 runners")
    demo.add_argument("--jobs", type=int, default=20000)
    demo.add_argument("--runners", type=int, default=3)
    demo.add_argument("--channels", default="root:16")
    demo.add_argument("--log-level", default="WARNING")
    return p


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = ("run", "migrate", "status", "demo")
    if not argv or (argv[0] not in commands and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "run")
    args = parser().parse_args(argv)
    # until a command has read its configuration (the runner then applies
    # --log-level/--log-format, validated with the rest)
    logs.setup("WARNING" if args.command == "demo" else "INFO")
    try:
        if args.command == "migrate":
            return cmd_migrate(args)
        if args.command == "demo":
            from .testing import demo
            return demo.main(args)
        if args.command == "status":
            from . import status
            return status.main(args)
        from . import process
        return process.main(args)
    except ConfigError as exc:
        print(f"queue-job-runner: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # a bug: one structured line with the traceback, exit 1
        _log.error("crashed", "unexpected %s: %s", type(exc).__name__, exc, exc_info=True)
        return 1


def cmd_migrate(args):
    cfg = config_mod.build(args)
    if not cfg.databases:
        raise ConfigError("migrate needs --database NAME (or db_name in the -c config)")
    for dbname in cfg.databases:
        try:
            conn = db.connect(cfg.db, dbname)
        except db.OperationalError as exc:
            raise ConfigError(
                f"cannot connect to database {db.describe(cfg.db, dbname)}: "
                f"{str(exc).strip().splitlines()[0]}; check --db-host/--db-port/--db-user or PG* variables"
            ) from exc
        try:
            db.check_server_version(conn)
            with conn.cursor() as cr:
                schema.migrate(cr, dbname)
            print(f"{dbname}: queue_job_skiplocked schema is up to date")
        finally:
            conn.close()
    return 0
