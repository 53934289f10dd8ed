# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What differs between the Odoo series this addon supports (17.0, 18.0,
19.0): the only module that looks at the running series. Everything else
uses the names below."""

from configparser import ConfigParser

from odoo import SUPERUSER_ID, http, release
from odoo.tools import config

SERIES = release.major_version
MAJOR = release.version_info[0]
if not 17 <= MAJOR <= 19:  # pragma: no cover - the manifest's installable range
    raise ImportError(f"queue_job_skiplocked supports Odoo 17.0 to 19.0, not {SERIES}")

# /queue_job/runjob?db=...&job_uuid=... on 17.0/18.0; 19.0 drops `db` and
# takes the database from the X-Odoo-Database header (or the session)
RUNJOB_DB_ARGUMENT = MAJOR < 19
# queue_job >= 18.0 runs jobs under _prevent_commit unless their job
# function has allow_commit (then in a cursor of their own)
ALLOW_COMMIT = MAJOR >= 18


def odoo_conf_section(name):
    """A section of odoo.conf as that series' queue_job reads it."""
    if MAJOR < 19:
        return dict(config.misc.get(name, {}))
    # Odoo 19 removed config.misc: queue_job 19 re-reads the file itself
    parser = ConfigParser(interpolation=None)
    if config.get("config"):
        parser.read(config["config"])
    return dict(parser[name]) if parser.has_section(name) else {}


def db_names():
    """--database / db_name as a list (a comma string before 19.0)."""
    value = config.get("db_name") or []
    if isinstance(value, str):
        value = value.split(",")
    return [name.strip() for name in value if name and name.strip()]


def runjob_superuser_env(db=None):
    """The superuser environment /queue_job/runjob runs in, set up as that
    series' stock controller does (19.0 also repoints the transaction's
    default_env, OCA/queue#922)."""
    request = http.request
    if RUNJOB_DB_ARGUMENT:
        request.session.db = db
        return request.env(user=SUPERUSER_ID)
    request.update_env(user=SUPERUSER_ID)
    return request.env


# API keys on HTTP routes (Authorization: Bearer <key>) exist from 18.0
BEARER_AUTH = MAJOR >= 18


def serves_long_waits():
    """May this process hold a request open (the gevent worker, or a
    threaded server)? A prefork HTTP worker serves one request at a time."""
    import odoo

    return bool(getattr(odoo, "evented", False)) or not config.get("workers")

# the root tag and view type of list views: <tree> until 17.0, <list> from 18.0
LIST_VIEW = "tree" if MAJOR < 18 else "list"
