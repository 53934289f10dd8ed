"""OCA queue_job's own runner, unmodified, for side-by-side runs (the
benchmarks) and for the migration guide's walk (tests/processes/test_guide.py).

The wheel is downloaded from PyPI at run time (pip download), its
jobrunner/runner.py, jobrunner/channels.py and exception.py are laid out
next to the stand-ins of oca_standin/ (the few `odoo` names they import),
and the runner runs in its own process, as Odoo would run it.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .fixtures import Proc

WHEEL = "odoo-addon-queue-job==17.0.1.5.4"
STANDIN = Path(__file__).with_name("oca_standin")
LAYOUT = {  # destination under site/ -> stand-in file, or ("wheel", path in the wheel)
    "odoo/__init__.py": "odoo__init__.py",
    "odoo/tools/__init__.py": "odoo_tools.py",
    "odoo/sql_db.py": "odoo_sql_db.py",
    "odoo/service/__init__.py": None,
    "odoo/service/db.py": "odoo_service_db.py",
    "odoo/addons/__init__.py": None,
    "odoo/addons/queue_job/__init__.py": None,
    "odoo/addons/queue_job/job.py": "queue_job_job.py",
    "odoo/addons/queue_job/exception.py": ("wheel", "odoo/addons/queue_job/exception.py"),
    "odoo/addons/queue_job/jobrunner/__init__.py": "queue_job_jobrunner__init__.py",
    "odoo/addons/queue_job/jobrunner/runner.py": ("wheel", "odoo/addons/queue_job/jobrunner/runner.py"),
    "odoo/addons/queue_job/jobrunner/channels.py": ("wheel", "odoo/addons/queue_job/jobrunner/channels.py"),
}


class OcaRunner:
    """Lays out OCA's runner once (per benchmark run) and starts it."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="qjsl-oca-"))
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL,
                        "-d", str(self.dir)], check=True)
        wheel = next(self.dir.glob("*.whl"))
        self.version = wheel.name.split("-")[1]
        site = self.dir / "site"
        with zipfile.ZipFile(wheel) as zf:
            for dest, src in LAYOUT.items():
                target = site / dest
                target.parent.mkdir(parents=True, exist_ok=True)
                if src is None:
                    target.write_text("")
                elif isinstance(src, tuple):
                    target.write_bytes(zf.read(src[1]))
                else:
                    shutil.copy(STANDIN / src, target)
        self.site = site
        (site / "odoo/service/__init__.py").write_text("from . import db  # noqa: F401\n")

    def start(self, cluster, dbname, executor_port, channels):
        env = {
            "PYTHONPATH": f"{self.site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "QJSL_BENCH_DB_HOST": cluster.host, "QJSL_BENCH_DB_PORT": str(cluster.port),
            "QJSL_BENCH_DB_USER": cluster.user, "QJSL_BENCH_DB_NAME": dbname,
            "QJSL_BENCH_HTTP_PORT": str(executor_port),
            "ODOO_QUEUE_JOB_CHANNELS": channels,
        }
        # its "ready" line, then WARNING and up: no log line per job (an upper
        # bound for OCA: Odoo's default INFO would log one per dispatch)
        code = ("import logging; logging.basicConfig(level=logging.INFO); "
                "logging.getLogger().handlers[0].addFilter("
                "lambda r: r.levelno >= logging.WARNING or 'ready for db' in r.getMessage()); "
                "from odoo.addons.queue_job.jobrunner.runner import QueueJobRunner; "
                "QueueJobRunner.from_environ_or_config().run()")
        return Proc(["-c", code], env=env)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)
