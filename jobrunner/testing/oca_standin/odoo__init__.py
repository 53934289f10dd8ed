"""Stand-in for the `odoo` package: just what OCA's runner.py touches."""
from . import service, sql_db, tools  # noqa: F401
