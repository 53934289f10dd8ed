"""Checks and applies our schema additions (the same file the addon applies)."""

from . import claim, queries
from .errors import DatabaseNotReady


def queue_job_installed(cr):
    cr.execute(queries.get("odoo_tables_exist"))
    if not cr.fetchone()[0]:
        return False
    cr.execute(queries.get("queue_job_module_installed"))
    return cr.fetchone()[0]


def schema_ready(cr):
    cr.execute(queries.get("schema_ready"))
    return cr.fetchone()[0]


def migrate(cr, dbname):
    """Apply schema.sql idempotently; refuse a database without queue_job."""
    if not queue_job_installed(cr):
        raise DatabaseNotReady(
            f"database {dbname!r}: queue_job is not installed "
            "(install the OCA queue_job addon in Odoo first, or pick another --database)"
        )
    cr.execute(queries.sql_file("schema.sql"))


def check_ready(cr, dbname):
    """Raise DatabaseNotReady with the fix unless the runner can serve dbname."""
    if not queue_job_installed(cr):
        raise DatabaseNotReady(
            f"database {dbname!r}: queue_job is not installed "
            "(install the OCA queue_job addon in Odoo first, or drop this --database)"
        )
    if not schema_ready(cr):
        raise DatabaseNotReady(
            f"database {dbname!r}: queue_job_skiplocked schema is missing "
            f"(run: queue-job-runner migrate --database {dbname}, "
            "or install/update the queue_job_skiplocked addon)"
        )


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
