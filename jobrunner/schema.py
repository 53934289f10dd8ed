"""Checks and applies our schema additions: the numbered migrations of
sql/migrations, the same files for `queue-job-runner migrate` and the
addon's install/update."""

import re

from . import claim, db as dbmod, logs, queries
from .errors import ConfigError, DatabaseNotReady

_log = logs.Log("jobrunner.schema")
MIGRATIONS_DIR = queries.SQL_DIR / "migrations"
_MIGRATION = re.compile(r"^(\d{4})_\w+\.sql$")


def migrations():
    """[(version, file name)] in order."""
    found = sorted((int(m.group(1)), p.name) for p in MIGRATIONS_DIR.iterdir()
                   if (m := _MIGRATION.match(p.name)))
    assert [v for v, _ in found] == list(range(1, len(found) + 1)), found
    return found


VERSION = len(migrations())  # the schema version this code needs


def queue_job_installed(cr):
    cr.execute(queries.get("odoo_tables_exist"))
    if not cr.fetchone()[0]:
        return False
    cr.execute(queries.get("queue_job_module_installed"))
    return cr.fetchone()[0]


def schema_version(cr):
    """Our schema version in this database (0: none, or older than versions)."""
    cr.execute(queries.get("schema_ready"))
    if not cr.fetchone()[0]:
        return 0
    cr.execute(queries.get("schema_version"))
    return cr.fetchone()[0]


def schema_ready(cr):
    return schema_version(cr) >= VERSION


def migration_sql():
    """Every migration as one script: under the migration lock, each file not
    yet recorded runs with the row that records it (one implicit transaction
    on an autocommit connection, part of Odoo's when the addon runs it)."""
    parts = [
        "SELECT pg_advisory_xact_lock({lock:migration}, 0)",
        "CREATE TABLE IF NOT EXISTS queue_job_skiplocked_version ("
        "version int4 NOT NULL PRIMARY KEY, name varchar NOT NULL, "
        "applied_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'))",
    ]
    for version, name in migrations():
        body = queries.sql_file(f"migrations/{name}")
        assert "$migration$" not in body, name
        parts.append(
            f"DO $migration$ BEGIN IF NOT EXISTS (SELECT FROM queue_job_skiplocked_version "
            f"WHERE version = {version}) THEN EXECUTE $body${body}$body$; "
            f"INSERT INTO queue_job_skiplocked_version (version, name) "
            f"VALUES ({version}, '{name}'); END IF; END $migration$")
    return queries.expand(";\n".join(parts) + ";")


def _not_installed(dbname, fix):
    return DatabaseNotReady(f"database {dbname!r}: queue_job is not installed "
                            f"(install the OCA queue_job addon in Odoo first, or {fix})")


def migrate(cr, dbname):
    """Apply the migrations not applied yet; refuse a database without queue_job."""
    if not queue_job_installed(cr):
        raise _not_installed(dbname, "pick another --database")
    cr.execute(migration_sql())


def check_ready(cr, dbname):
    """Raise DatabaseNotReady with the fix unless the runner can serve dbname."""
    if not queue_job_installed(cr):
        raise _not_installed(dbname, "drop this --database")
    if not schema_ready(cr):
        raise DatabaseNotReady(
            f"database {dbname!r}: queue_job_skiplocked schema is missing "
            f"(run: queue-job-runner migrate --database {dbname}, "
            "or install/update the queue_job_skiplocked addon)"
        )


def queue_job_series(cr):
    """The major version of the installed queue_job (17, 18, 19), or None
    when ir_module_module does not say."""
    cr.execute(queries.get("queue_job_version"))
    row = cr.fetchone()
    head = (row[0] or "").split(".")[0] if row else ""
    return int(head) if head.isdigit() else None


def stock_trigger_present(cr):
    cr.execute(queries.get("stock_trigger_present"))
    return cr.fetchone()[0]


def apply_flag(cr, skip_locked):
    """Flag on: drop the stock NOTIFY trigger; off: put it back as queue_job
    creates it. Returns what changed ("dropped", "restored" or None)."""
    present = stock_trigger_present(cr)
    if skip_locked and present:
        cr.execute(queries.get("stock_trigger_drop"))
        return "dropped"
    if not skip_locked and not present:
        cr.execute(queries.sql_file("stock/notify_trigger.sql"))
        return "restored"
    return None


def uninstall(cr):
    """The addon's uninstall: leave stock queue_job as it was. Claims of
    dead runners go back to pending, the stock trigger comes back whatever
    the flag says, and what Odoo does not know of goes (Odoo itself drops
    the claimed_by/claim_token columns and the queue_job_runner table)."""
    claim.recover(cr, 0)
    apply_flag(cr, False)
    cr.execute(queries.sql_file("uninstall.sql"))


def discover(cfg):
    """Databases to serve: --database, else db_name, else every database with
    queue_job installed (refusing, with the fix, those lacking our schema)."""
    if cfg.databases:
        return cfg.databases
    found = []
    for name in dbmod.list_databases(cfg.db):
        try:
            conn = dbmod.connect(cfg.db, name, connect_timeout=10)
        except dbmod.OperationalError:
            continue
        try:
            with conn.cursor() as cr:
                if not queue_job_installed(cr):
                    continue
                if not schema_ready(cr):
                    _log.error("schema-missing", "database has queue_job but not the "
                               "queue_job_skiplocked schema; skipped (run: queue-job-runner "
                               "migrate --database %s)", name, db=name)
                    continue
                found.append(name)
        finally:
            conn.close()
    if not found:
        raise ConfigError("no database with queue_job and the queue_job_skiplocked schema found; "
                          "give --database NAME (and run queue-job-runner migrate)")
    return found
