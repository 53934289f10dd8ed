"""Stand-in for odoo.tools: `config`, filled from QJSL_BENCH_* variables."""
import os

config = {
    "db_host": os.environ.get("QJSL_BENCH_DB_HOST") or False,
    "db_port": os.environ.get("QJSL_BENCH_DB_PORT") or False,
    "db_user": os.environ.get("QJSL_BENCH_DB_USER") or False,
    "db_password": False,
    "db_name": os.environ.get("QJSL_BENCH_DB_NAME") or False,
    "http_interface": "127.0.0.1",
    "http_port": int(os.environ.get("QJSL_BENCH_HTTP_PORT") or 8069),
    "stop_after_init": False,
}
