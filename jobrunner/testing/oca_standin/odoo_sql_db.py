"""Stand-in for odoo.sql_db.connection_info_for."""
from .tools import config


def connection_info_for(db_name):
    info = {"dbname": db_name}
    for key in ("host", "port", "user"):
        if config["db_" + key]:
            info[key] = config["db_" + key]
    return db_name, info
