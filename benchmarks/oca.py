"""OCA queue_job's own runner, unmodified, for side-by-side runs.

The wheel is downloaded from PyPI at run time (pip download), its
jobrunner/runner.py, jobrunner/channels.py and exception.py are laid out
next to the stand-ins of benchmarks/oca_standin/ (the few `odoo` names they
import), and the runner runs in its own process, as Odoo would run it.
"""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from tests.procs import Proc

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


class SideBySide:
    """What the OCA comparisons share: a cluster with `bench_oca` (stock
    trigger, for OCA's runner) and `bench_ours` (our schema, no trigger, as
    with the flag on), one reference executor, OCA's runner laid out."""

    def __init__(self, executor_args=("--no-record",)):
        self.executor_args = executor_args

    def __enter__(self):
        from tests.helpers import Database
        from tests.procs import start_executor

        from .common import cluster, create_db, environment

        self.c = cluster()
        try:
            self.oca_runner = OcaRunner()
            self._conns = [create_db(self.c, "bench_oca", trigger=True),
                           create_db(self.c, "bench_ours", trigger=False)]
            self.db_oca = Database(self.c, "bench_oca", "17")
            self.db_ours = Database(self.c, "bench_ours", "17")
            self.env = environment(self._conns[1])
            self.executor = start_executor(self.c, *self.executor_args)
        except BaseException:
            self.c.destroy()
            raise
        return self

    @contextlib.contextmanager
    def ours(self, channels="root:4", *extra, processes=1):
        """Our runner(s) on bench_ours, registered and settled."""
        from tests.helpers import wait_until
        from tests.procs import start_runner

        procs = [start_runner(self.c, ["bench_ours"], self.executor.port, "--channels", channels,
                              "--log-level", "WARNING", *extra) for _ in range(processes)]
        try:
            wait_until(lambda: self.db_ours.scalar("SELECT count(*) FROM queue_job_runner") == processes,
                       message="our runners")
            time.sleep(1)  # settle, as the peers got
            yield procs
        finally:
            for p in procs:
                p.terminate()
                p.close()

    @contextlib.contextmanager
    def oca(self, channels="root:4"):
        """OCA's runner on bench_oca, listening and settled."""
        from tests.helpers import wait_until

        proc = self.oca_runner.start(self.c, "bench_oca", self.executor.port, channels)
        try:
            wait_until(lambda: "ready for db" in proc.output(), timeout=60, message="OCA's runner")
            time.sleep(1)
            yield proc
        finally:
            proc.close()

    def __exit__(self, *exc):
        try:
            self.executor.close()
            for d in (self.db_oca, self.db_ours, *self._conns):
                d.close()
            self.oca_runner.close()
        finally:
            self.c.destroy()
