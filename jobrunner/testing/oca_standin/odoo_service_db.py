"""Stand-in for odoo.service.db.list_dbs."""
from ..tools import config


def list_dbs(force=False):
    return config["db_name"].split(",") if config["db_name"] else []
