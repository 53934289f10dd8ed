# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from jobrunner import logs, schema

_log = logs.Log(__name__, inline=True)


def uninstall_hook(env):
    """Leave stock queue_job whole: its trigger back (whatever the flag),
    dead runners' claims pending again, our indexes and tables gone. Odoo
    then drops the claimed_by/claim_token columns and queue_job_runner."""
    schema.uninstall(env.cr)
    _log.info("uninstalled", "queue_job_skiplocked uninstalled: stock queue_job trigger in place, "
              "schema additions removed", db=env.cr.dbname)
