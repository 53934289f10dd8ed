"""Connections: autocommit psycopg2 connections built from the config, and
the one way to open a transaction on them."""

import contextlib

import psycopg2
import psycopg2.extensions

from .errors import ConfigError


class Connection(psycopg2.extensions.connection):
    """A connection that may carry a prepared.Plan (None: the plain claim);
    a new one, a reconnect's, has none."""

    plan = None


def connect(conninfo, dbname, application_name="queue-job-runner", **extra):
    """An autocommit (READ COMMITTED) connection: each statement is a transaction."""
    params = {k: v for k, v in conninfo.items() if v not in (None, "")}
    params["dbname"] = dbname
    params.setdefault("application_name", application_name)
    params.update(extra)
    conn = psycopg2.connect(connection_factory=Connection, **params)
    conn.autocommit = True
    return conn


def describe(conninfo, dbname=None):
    """host:port/db for log lines: never the password, never a full DSN."""
    host = conninfo.get("host") or "(libpq default host)"
    port = conninfo.get("port") or "(default port)"
    return f"{host}:{port}/{dbname or conninfo.get('dbname') or '?'}"


def list_databases(conninfo):
    """Every database of the server that we may connect to (for discovery)."""
    conn = connect(conninfo, conninfo.get("dbname") or "postgres")
    try:
        with conn.cursor() as cr:
            cr.execute(
                "SELECT datname FROM pg_database WHERE datallowconn "
                "AND NOT datistemplate AND has_database_privilege(datname, 'CONNECT') "
                "ORDER BY datname"
            )
            return [r[0] for r in cr.fetchall()]
    finally:
        conn.close()


def check_server_version(conn):
    """SKIP LOCKED needs PostgreSQL 9.5; we support 12+ (Odoo 17's minimum)."""
    version = conn.server_version
    if version < 90500:
        raise ConfigError(
            f"PostgreSQL {version // 10000}.{version // 100 % 100} is too old: "
            "FOR UPDATE SKIP LOCKED needs 9.5 or later (12+ supported); upgrade PostgreSQL"
        )


def begin(cr, first=None, params=None, **set_local):
    """BEGIN, SET LOCAL each setting, and the transaction's `first`
    statement, sent together in one round trip."""
    sql = ["BEGIN"] + [f"SET LOCAL {name} = %({name})s" for name in set_local]
    if first is not None:
        sql.append(first)
    cr.execute("; ".join(sql), {**(params or {}), **set_local})


@contextlib.contextmanager
def transaction(conn, first=None, params=None, **set_local):
    """A short explicit transaction on an autocommit connection: committed
    when the block ends, rolled back on any exception (unless the
    connection broke, which ended it anyway)."""
    with conn.cursor() as cr:
        begin(cr, first, params, **set_local)
        try:
            yield cr
        except BaseException:
            if not conn.closed:
                try:
                    cr.execute("ROLLBACK")
                except psycopg2.Error:  # broken meanwhile: nothing left to end
                    pass
            raise
        cr.execute("COMMIT")


DatabaseError = psycopg2.DatabaseError  # the base of OperationalError, IntegrityError...
OperationalError = psycopg2.OperationalError
InterfaceError = psycopg2.InterfaceError
ISOLATION_AUTOCOMMIT = psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT
