"""The unit tier runs without PostgreSQL: a test here that asks for the
cluster fails at once instead of starting one."""

import pytest


@pytest.fixture(scope="session")
def pg_cluster():
    pytest.fail("the unit tier runs without PostgreSQL: move this test to tests/db or tests/processes")
