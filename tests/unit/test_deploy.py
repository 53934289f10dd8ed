"""deploy/: the Prometheus alert rules pass promtool's check and their own
promtool tests, every alert has series that fire it and series that must
not, and the Grafana dashboard is importable and shows what it promises.
tests/processes/test_deploy.py checks their metric names against a runner."""

import re
import subprocess

import yaml

from jobrunner.metrics import DATABASE_GAUGES

from ..deploy import (GRAFANA_VALUES, PROMETHEUS, RULES, RULES_TEST, alerts, dashboard,
                      dashboard_expressions, expressions, metric_names, panels, promtool)


def _promtool(*args, cwd=PROMETHEUS):
    res = subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout + res.stderr


def test_the_rules_pass_promtool_check_and_test():
    assert f"SUCCESS: {len(alerts())} rules found" in _promtool("check", "rules", RULES.name)
    assert "SUCCESS" in _promtool("test", "rules", RULES_TEST.name)
    # the scrape example, with the rules it loads
    assert "is valid prometheus config file syntax" in _promtool("check", "config", "prometheus.yml")


def test_every_alert_has_series_that_fire_it_and_series_that_must_not():
    fired, quiet = set(), set()
    for test in yaml.safe_load(RULES_TEST.read_text())["tests"]:
        for case in test["alert_rule_test"]:
            (fired if case["exp_alerts"] else quiet).add(case["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert fired == names and quiet == names, (names - fired, names - quiet)


def test_every_alert_waits_has_a_severity_and_says_what_to_do():
    for rule in alerts():
        assert re.fullmatch(r"\d+m", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and len(rule["annotations"]["description"]) > 80, rule["alert"]


def test_database_gauges_are_taken_once_per_database_not_summed_over_runners():
    """Every runner of a database serves its gauges: an expression that
    aggregates one must take max or min first (sum would count runners)."""
    for where, expr in expressions():
        for name in metric_names(expr) & set(DATABASE_GAUGES):
            if where.startswith("variable"):
                continue
            for match in re.finditer(rf"{name}\b", expr):
                assert re.search(r"\b(max|min)(\s+by\s*\([^)]*\))?\s*\(\s*$", expr[:match.start()]), \
                    f"{where}: {expr}"


def test_the_dashboard_takes_its_data_source_and_database_as_variables():
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    assert variables["database"]["type"] == "query"
    assert re.fullmatch(r"label_values\(\w+, db\)", variables["database"]["query"]["query"])
    source = {"type": "prometheus", "uid": "${datasource}"}
    for panel in panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == source and panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == source and target["expr"], panel["title"]
            for name in metric_names(target["expr"]) & set(DATABASE_GAUGES):  # by the chosen database
                assert re.search(rf'{name}\{{[^}}]*db=~"\$database"', target["expr"]), panel["title"]
    uids = re.findall(r'"uid": "([^"]*)"', (PROMETHEUS.parent / "grafana" / "queue_job_skiplocked.json")
                      .read_text())
    assert set(uids) == {"${datasource}", dashboard()["uid"]}  # no data source of one installation


def test_the_dashboard_panels_fit_its_grid_without_overlapping():
    ids, cells = set(), {}
    for panel in panels():
        assert panel["id"] not in ids
        ids.add(panel["id"])
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, (panel["title"], cells.get((x, y)))
                cells[x, y] = panel["title"]


def test_the_dashboard_shows_what_issue_20_lists():
    shown = set().union(*(metric_names(expr) for _where, expr in dashboard_expressions()))
    listed = {
        "throughput": "queue_job_runner_done_total",
        "claim latency": "queue_job_runner_claim_seconds_bucket",
        "in flight per channel": "queue_job_runner_in_flight",
        "against capacity": "queue_job_runner_capacity",
        "pending": "queue_job_runner_pending_jobs",
        "oldest pending age": "queue_job_runner_oldest_pending_seconds",
        "reconnects": "queue_job_runner_db_reconnects_total",
        "killed jobs": "queue_job_runner_dead_executions_total",
    }
    assert set(listed.values()) <= shown, set(listed.values()) - shown


def test_the_dashboard_expressions_are_valid_promql(tmp_path):
    """promtool parses each, the variables as Grafana fills them in."""
    rules = []
    for i, (_where, expr) in enumerate(dashboard_expressions()):
        for variable, value in GRAFANA_VALUES.items():
            expr = expr.replace(variable, value)
        if not expr.startswith("label_values("):  # Grafana's, not PromQL
            rules.append({"record": f"dashboard:expr_{i}", "expr": expr})
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in _promtool("check", "rules", str(path))
