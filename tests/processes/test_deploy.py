"""Every metric the alert rules and the Grafana dashboard of deploy/ name is
one a real runner serves on /metrics (tests/unit/test_deploy.py checks the
files themselves)."""

import re

import pytest

from jobrunner.testing.pgcluster import free_port

from jobrunner.testing.fixtures import http_get, start_executor, start_runner, wait_until
from ..deploy import expressions, metric_names


def test_every_metric_of_the_rules_and_the_dashboard_is_served(qdb, pg_cluster, procs):
    if qdb.version != "17":
        pytest.skip("the metric names do not depend on the schema series")
    executor = start_executor(pg_cluster)
    procs.append(executor)
    port = free_port()
    procs.append(start_runner(pg_cluster, [qdb.name], executor.port, "--metrics-port", str(port)))
    wait_until(lambda: http_get(port, "/healthz")[0] == 200, message="the runner's /healthz")
    body = http_get(port, "/metrics")[1]
    served = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", body, re.MULTILINE):
        served.add(name)
        if kind == "histogram":
            served.update(f"{name}_{part}" for part in ("bucket", "sum", "count"))
    named = {}
    for where, expr in expressions():
        for name in metric_names(expr):
            named.setdefault(name, where)
    assert len(named) >= 10  # the parse found them
    assert {name: where for name, where in named.items() if name not in served} == {}
