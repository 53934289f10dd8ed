import ast
import pathlib

from setuptools import setup

# One version for every Odoo series, written once: the manifest's, series-less
# ("1.0.0"; each series' loader prefixes its own, e.g. 19.0.1.0.0).
# tests/unit/test_version.py ties jobrunner.__version__ to it.
HERE = pathlib.Path(__file__).parent
VERSION = ast.literal_eval((HERE / "queue_job_skiplocked" / "__manifest__.py").read_text())["version"]

setup(
    name="queue-job-skiplocked",
    version=VERSION,
    description="FOR UPDATE SKIP LOCKED multi-node job runner for OCA queue_job",
    long_description=open("README.rst").read(),
    long_description_content_type="text/x-rst",
    license="LGPL-3",
    python_requires=">=3.10",
    packages=[
        "jobrunner",
        "jobrunner.testing",  # the demo subcommand's; no runtime module imports it
        "odoo.addons.queue_job_skiplocked",
        "odoo.addons.queue_job_skiplocked.models",
        "odoo.addons.queue_job_skiplocked.controllers",
        "odoo.addons.queue_job_skiplocked.wizards",
        "odoo.addons.queue_job_skiplocked.tests",
    ],
    package_dir={"odoo.addons.queue_job_skiplocked": "queue_job_skiplocked"},
    package_data={
        "jobrunner": ["sql/*.sql", "sql/stock/*.sql", "sql/migrations/*.sql", "sql/migrations/README"],
        "jobrunner.testing": ["*.sql", "stock/*.sql", "oca_standin/*"],
        "odoo.addons.queue_job_skiplocked": ["readme/*", "security/*", "views/*", "wizards/*.xml",
                                             "data/*"],
    },
    # cronsim: periodic jobs' cron expressions (jobrunner/schedule.py says why not croniter)
    install_requires=["psycopg2-binary>=2.8", "werkzeug>=2.0", "gevent>=22.10", "cronsim>=2.6"],
    extras_require={
        # requests: OCA's own runner, run unmodified by tests/processes/test_guide.py;
        # pyyaml: the alert rules of deploy/prometheus, read by the deploy tests
        "test": ["pytest>=7", "pytest-postgresql>=6", "pytest-timeout", "pylint-odoo", "requests", "pyyaml"],
        # benchmarks only: PNG plots of benchmarks/RESULTS.md; OCA's runner
        # (downloaded by the benchmark itself) needs requests
        "bench": ["matplotlib", "requests"],
    },
    entry_points={"console_scripts": ["queue-job-runner=jobrunner.cli:main"]},
)
