"""The monitoring files of deploy/ as the deploy tests read them: the alert
rules' and the dashboard's PromQL expressions and the metric names they
use, and promtool (scripts/ensure_deps.sh installs it)."""

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "queue_job_skiplocked.rules.yml"
RULES_TEST = PROMETHEUS / "queue_job_skiplocked.rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "queue_job_skiplocked.json"
# what Grafana puts in place of the dashboard's variables, for promtool
GRAFANA_VALUES = {"$__rate_interval": "5m", "$database": ".*", "$instance": ".*"}
# PromQL words the expressions use that are not metric names
PROMQL = {"sum", "max", "min", "rate", "increase", "histogram_quantile", "absent", "by", "label_values"}


def promtool():
    exe = shutil.which("promtool")
    if exe is None:
        if os.environ.get("CI"):
            raise RuntimeError("promtool missing in CI: scripts/test.sh installs it (apt-get install -y "
                               "--no-install-recommends prometheus)")
        pytest.skip("promtool not installed (apt-get install -y --no-install-recommends prometheus)")
    return exe


def alerts():
    """The alerting rules, as written."""
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def dashboard():
    return json.loads(DASHBOARD.read_text())


def panels():
    """Every panel, those inside rows too."""
    out = []
    for panel in dashboard()["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def dashboard_expressions():
    """(where, expression) of every panel target and query variable."""
    found = [(f"panel {p['title']!r} {t['refId']}", t["expr"]) for p in panels() for t in p.get("targets", [])]
    found += [(f"variable {v['name']}", v["query"]["query"]) for v in dashboard()["templating"]["list"]
              if v["type"] == "query"]
    return found


def expressions():
    return [(f"alert {r['alert']}", r["expr"]) for r in alerts()] + dashboard_expressions()


def metric_names(expr):
    """The metric names of a PromQL expression: what is left once label
    values, matchers, ranges, label lists, numbers and PromQL's words are out."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"label_values\((\w+),\s*\w+\)", r"\1", expr)
    return set(re.findall(r"(?<![\w.])[a-zA-Z_:][\w:]*", expr)) - PROMQL
