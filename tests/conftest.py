"""A real PostgreSQL for the tests: one throwaway cluster per session (run as
the `postgres` user when we are root), one fresh database per test, cloned by
pytest-postgresql from a template that holds OCA queue_job's real schema
(17.0 and 18.0 variants)."""

import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from jobrunner import queries
from jobrunner.pgcluster import Cluster

from .helpers import Database

STOCK_17 = queries.SQL_DIR / "stock" / "queue_job_17.sql"
STOCK_18 = queries.SQL_DIR / "stock" / "queue_job_18.sql"
STOCK_TRIGGER = queries.SQL_DIR / "stock" / "notify_trigger.sql"


@pytest.fixture(scope="session")
def pg_cluster():
    with Cluster() as cluster:
        yield cluster


def _janitor(cluster, dbname, **kw):
    return DatabaseJanitor(user=cluster.user, host=cluster.host, port=cluster.port,
                           dbname=dbname, **kw)


@pytest.fixture(scope="session")
def templates(pg_cluster):
    """Template databases holding stock queue_job, one per OCA series."""
    janitors = []
    for version, path in (("17", STOCK_17), ("18", STOCK_18)):
        janitor = _janitor(pg_cluster, f"qj{version}_tmpl", as_template=True)
        janitor.init()
        janitor.load(path)
        janitor.load(STOCK_TRIGGER)
        janitors.append(janitor)
    yield
    for janitor in janitors:
        janitor.drop()


@pytest.fixture(params=["17", "18"])
def stock_db(request, pg_cluster, templates):
    """A fresh database with stock queue_job (17.0 or 18.0 schema), not migrated."""
    name = f"qj{request.param}"
    with _janitor(pg_cluster, name, template_dbname=f"{name}_tmpl"):
        db = Database(pg_cluster, name, request.param)
        yield db
        db.close()


@pytest.fixture
def qdb(stock_db):
    """A fresh queue_job database with our schema additions applied."""
    stock_db.migrate()
    return stock_db


@pytest.fixture
def procs():
    """Processes a test starts; killed and their logs removed at its end."""
    started = []
    yield started
    for p in started:
        p.close()
