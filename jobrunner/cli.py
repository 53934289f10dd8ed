"""queue-job-runner: run (default), migrate, status, wait, demo.

Exit codes: 0 clean stop, 2 configuration error, 1 anything else; wait:
0 done, 3 failed, 4 cancelled, 5 still not ended at the timeout, 6 unknown
job (see WAIT_EXIT).
"""

import argparse
import json
import sys

from . import __version__, config as config_mod, db, logs, schema, settings
from .errors import ConfigError, first_line

_log = logs.Log("jobrunner")


def _add_settings(p, command):
    p.add_argument("-c", "--config", help="odoo.conf to read [queue_job] and [options] from")
    p.add_argument("-d", "--database", action="append",
                   help="database to serve (repeatable); default: odoo.conf db_name, "
                        "else every database with queue_job installed")
    for setting in settings.for_command(command):
        p.add_argument(setting.flag, dest=setting.name,
                       help=f"{setting.help} [{setting.env_var}, [queue_job] {setting.conf_key}]")


def parser():
    p = argparse.ArgumentParser(prog="queue-job-runner", description=__doc__)
    p.add_argument("--version", action="version", version=__version__)
    sub = p.add_subparsers(dest="command")
    run = sub.add_parser("run", help="claim and dispatch jobs (default)")
    _add_settings(run, "run")
    mig = sub.add_parser("migrate", help="apply our schema additions (idempotent)")
    _add_settings(mig, "common")
    st = sub.add_parser("status", help="jobs, channels and runners per database")
    _add_settings(st, "common")
    st.add_argument("--json", action="store_true")
    wt = sub.add_parser("wait", help="wait for a job to end; exit code by its state")
    _add_settings(wt, "common")
    wt.add_argument("uuid")
    wt.add_argument("--timeout", type=float, default=60.0, help="seconds (60)")
    wt.add_argument("--json", action="store_true")
    demo = sub.add_parser("demo", help="throwaway PostgreSQL + executor + 3 runners")
    demo.add_argument("--jobs", type=int, default=20000)
    demo.add_argument("--runners", type=int, default=3)
    demo.add_argument("--channels", default="root:16")
    demo.add_argument("--log-level", default="WARNING")
    return p


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = ("run", "migrate", "status", "wait", "demo")
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
        if args.command == "wait":
            return cmd_wait(args)
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


WAIT_EXIT = {"done": 0, "failed": 3, "cancelled": 4, "timeout": 5, "unknown": 6}


def cmd_wait(args):
    """queue-job-runner wait UUID: the job's state, result or error once it
    ended (or at --timeout), and an exit code scripts can branch on."""
    from . import wait

    cfg = config_mod.build(args)
    if len(cfg.databases) != 1:
        raise ConfigError(f"wait needs one database, not {cfg.databases or 'none'}: "
                          "give --database NAME (or one db_name in the -c config)")
    if args.timeout < 0:
        raise ConfigError(f"invalid --timeout value {args.timeout:g}: must be >= 0")
    outcome = wait.waiters(cfg.db, cfg.databases[0]).wait(args.uuid, args.timeout)
    if outcome is None:
        kind, shown = "unknown", {"uuid": args.uuid, "state": None}
    else:
        kind, shown = (outcome.state if outcome.ended else "timeout"), outcome.as_dict()
    if args.json:
        print(json.dumps(shown))
    elif outcome is None:
        print(f"{args.uuid}: no such job in {cfg.databases[0]}")
    else:
        detail = outcome.result if outcome.state == "done" else outcome.exc_message
        print(f"{args.uuid}: {outcome.state}" + (f": {detail}" if detail else ""))
    return WAIT_EXIT[kind]


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
                f"{first_line(exc)}; check --db-host/--db-port/--db-user or PG* variables"
            ) from exc
        try:
            db.check_server_version(conn)
            with conn.cursor() as cr:
                schema.migrate(cr, dbname)
            print(f"{dbname}: queue_job_skiplocked schema is up to date")
        finally:
            conn.close()
    return 0
