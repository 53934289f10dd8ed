"""A real PostgreSQL for the db and processes tiers: one throwaway cluster
per session (run as the `postgres` user when we are root), one fresh
database per test, cloned from a template that holds OCA queue_job's real
schema (17.0, 18.0 and 19.0 variants).

Nothing here starts PostgreSQL unless a test asks for these fixtures: the
unit tier asks for none (tests/unit/conftest.py makes sure) and runs where
PostgreSQL is not installed."""

import pytest

from jobrunner.testing.fixtures import build_db
from jobrunner.testing.pgcluster import Cluster

SERIES = ("17", "18", "19")
PROCESS_SERIES = ("17", "18")


@pytest.fixture(scope="session")
def pg_cluster():
    with Cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def templates(pg_cluster):
    """Template databases holding stock queue_job, one per OCA series."""
    for version in SERIES:
        build_db(pg_cluster, f"qj{version}_tmpl", version, migrate=False, is_template=True)


def _clone(cluster, name, version, migrate):
    db = build_db(cluster, name, version, template=f"qj{version}_tmpl", migrate=migrate)
    yield db
    db.drop()


def pytest_generate_tests(metafunc):
    """stock_db (hence qdb) on every series in the db tier; the processes
    tier tests the runner's behaviour, which the schema series does not
    change, on 17.0 and 18.0 (19.0's runjob protocol has tests of its own
    there): three series would cost a third more CI time for nothing."""
    if "stock_db" in metafunc.fixturenames:
        processes = "/tests/processes/" in str(metafunc.definition.path).replace("\\", "/")
        metafunc.parametrize("stock_db", PROCESS_SERIES if processes else SERIES, indirect=True)


@pytest.fixture
def stock_db(request, pg_cluster, templates):
    """A fresh database with stock queue_job (17.0, 18.0 or 19.0 schema), not migrated."""
    yield from _clone(pg_cluster, f"qj{request.param}", request.param, migrate=False)


@pytest.fixture
def qdb(stock_db):
    """A fresh queue_job database with our schema additions applied."""
    stock_db.migrate()
    return stock_db


@pytest.fixture(params=["plain", "prepared"])
def claim_form(request, qdb):
    """qdb's claims as the plain statement (a runner in poll mode, or idle)
    and in a busy spell of a notify-mode runner: its first claim plans the
    prepared statement, the next ones that follow a claim that found jobs
    run it. The same jobs either way."""
    if request.param == "prepared":
        from jobrunner import prepared

        prepared.attach(qdb.conn).busy = True
    return request.param


@pytest.fixture
def second_db(qdb, pg_cluster, templates):
    """Another fresh migrated database of the same series, for multi-database runs."""
    yield from _clone(pg_cluster, f"{qdb.name}_b", qdb.version, migrate=True)


@pytest.fixture
def procs():
    """Processes a test starts; killed and their logs removed at its end."""
    started = []
    yield started
    for p in started:
        p.close()
