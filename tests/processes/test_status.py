"""queue-job-runner status against live runners (tests/db/test_status.py:
against the table alone)."""

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

from jobrunner.testing.pgcluster import free_port

from jobrunner.testing.fixtures import (http_get, registered_runners, scrape, start_executor,
                                       start_runner, status, stuck_runner, wait_until)

GUIDE = Path(__file__).resolve().parents[2] / "migration_guide" / "README.rst"


def test_status_agrees_with_the_table_live_and_dead_runners(qdb, pg_cluster, procs):
    with stuck_runner(pg_cluster, qdb, procs, 5, channel="root.a") as stuck:
        executor = start_executor(pg_cluster)
        procs.append(executor)
        worker = start_runner(pg_cluster, [qdb.name], executor.port, "--channels", "root:3,root.b:1",
                              "--recovery-interval", "600")
        procs.append(worker)
        wait_until(lambda: registered_runners(qdb) == 2)
        qdb.insert_jobs(20, channel="root.b", method_name="sleep_ms", args="[5]")
        wait_until(lambda: qdb.states().get("done") == 20, message="root.b to drain")

        report = json.loads(status(pg_cluster, qdb, "--json"))[0]
        by_channel = {c["channel"]: c for c in report["channels"]}
        table = {(ch, st): n for ch, st, n in qdb.execute(
            "SELECT channel, state, count(*) FROM queue_job GROUP BY 1, 2")}
        assert {(c, s): n for c, v in by_channel.items() for s, n in v["states"].items()} == table
        assert by_channel["root.a"]["running"] == 5 and by_channel["root.a"]["oldest_pending_s"] is None
        live = {r["pid"]: r for r in report["runners"]}
        assert set(live) == {stuck.pid, worker.pid}
        assert live[stuck.pid]["in_flight"] == 5 and live[worker.pid]["in_flight"] == 0
        assert report["capacity"] == 5 + 3 and report["running"] == 5 and report["dead_runners"] == []

        stuck.kill()  # its lock goes with it; the survivor recovers only every 600 s
        report = json.loads(status(pg_cluster, qdb, "--json"))[0]
        assert [r["pid"] for r in report["runners"]] == [worker.pid]
        assert [(r["pid"], r["in_flight"]) for r in report["dead_runners"]] == [(stuck.pid, 5)]
        text = status(pg_cluster, qdb)
        assert "root.a" in text and "root.b" in text
        assert f"pid {stuck.pid}: 5 job(s) wait for recovery" in text


GAUGES = ("live_runners", "dead_runners", "dead_runner_claims", "pending_jobs", "oldest_pending_seconds")


def _gauges(port, db):
    """db's database-wide gauges in one runner's /metrics, {(gauge, channel): value}."""
    out = {}
    for (name, labels), value in scrape(port).items():
        labels, gauge = dict(labels), name.removeprefix("queue_job_runner_")
        if gauge in GAUGES and labels.get("db") == db:
            out[gauge, labels.get("channel")] = value
    return out


def test_database_gauges_agree_with_status_on_every_runner(qdb, pg_cluster, procs):
    """Every runner tells the same database-wide gauges (alerts take the max
    by db, deploy/prometheus); a dead runner's claims show until recovered."""
    stuck_port, other_port = free_port(), free_port()
    with stuck_runner(pg_cluster, qdb, procs, 5, "--metrics-port", str(stuck_port)) as stuck:
        # its capacity is full: these stay pending, one due for 10 min, one due in an hour
        now = datetime.utcnow()
        qdb.insert_jobs(3, channel="root.late", date_created=now - timedelta(minutes=10))
        qdb.insert_jobs(1, channel="root.later", eta=now + timedelta(hours=1))

        def steady(port):  # all but the age that grows
            gauges = _gauges(port, qdb.name)
            return gauges, gauges.pop(("oldest_pending_seconds", "root.late"), None)

        want = {("live_runners", None): 1, ("dead_runners", None): 0, ("dead_runner_claims", None): 0,
                ("pending_jobs", "root.late"): 3, ("pending_jobs", "root.later"): 1,
                ("oldest_pending_seconds", "root.later"): 0}
        wait_until(lambda: steady(stuck_port)[0] == want, message="the stuck runner's gauges")
        age = steady(stuck_port)[1]
        [late] = [c for c in json.loads(status(pg_cluster, qdb, "--json"))[0]["channels"]
                  if c["channel"] == "root.late"]
        assert 600 <= age <= late["oldest_pending_s"]  # status read after, by its own query

        # another runner, which claims nothing and recovers every 600 s only
        other = start_runner(pg_cluster, [qdb.name], free_port(), "--channels", "root:0",
                             "--recovery-interval", "600", "--metrics-port", str(other_port))
        procs.append(other)
        want["live_runners", None] = 2
        for port in (stuck_port, other_port):
            wait_until(lambda: steady(port)[0] == want, message=f"two live runners in {port}'s gauges")
        stuck.kill()
        want.update({("live_runners", None): 1, ("dead_runners", None): 1, ("dead_runner_claims", None): 5})
        wait_until(lambda: steady(other_port)[0] == want, message="the dead runner's claims in the gauges")
        report = json.loads(status(pg_cluster, qdb, "--json"))[0]
        assert [r["in_flight"] for r in report["dead_runners"]] == [5]


def _sample(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_metrics_and_healthz_agree_with_a_live_drain(qdb, pg_cluster, procs):
    executor = start_executor(pg_cluster)
    procs.append(executor)
    port = free_port()
    runner = start_runner(pg_cluster, [qdb.name], executor.port, "--channels", "root:4",
                          "--metrics-port", str(port))
    procs.append(runner)
    wait_until(lambda: http_get(port, "/healthz")[0] == 200, message="healthz 200")
    qdb.insert_jobs(30, channel="root.m")
    wait_until(lambda: qdb.states() == {"done": 30}, message="the drain")
    wait_until(lambda: _sample(http_get(port, "/metrics")[1], "queue_job_runner_done_total") == 30,
               message="the runner to see every job done")
    text = http_get(port, "/metrics")[1]
    assert _sample(text, "queue_job_runner_claimed_total") == 30
    assert _sample(text, "queue_job_runner_dispatched_total") == 30
    assert _sample(text, "queue_job_runner_failed_total") == 0
    assert _sample(text, "queue_job_runner_claim_seconds_count") >= 1
    assert _sample(text, "queue_job_runner_up") == 1
    assert 'queue_job_runner_wakeups_total{cause="' in text
    assert "queue_job_runner_in_flight{" not in text  # nothing left in flight
    assert http_get(port, "/nope")[0] == 404
    # the guide's table of metrics is what a runner serves
    served = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))
    documented = dict(re.findall(r"^   \* - ``(queue_job_runner_\w+)``\n     - (\w+)$",
                                 GUIDE.read_text(), re.MULTILINE))
    assert documented == served


def test_healthz_is_503_while_the_database_cannot_be_reached(pg_cluster, procs):
    port = free_port()
    runner = start_runner(pg_cluster, ["postgres"], free_port(), "--db-port", str(free_port()),
                          "--metrics-port", str(port))
    procs.append(runner)
    wait_until(lambda: http_get(port, "/healthz")[0] == 503, message="healthz 503")
    assert "not connected" in http_get(port, "/healthz")[1] or "no database loop" in http_get(port, "/healthz")[1]
    # no database-wide gauge while not connected: nothing stale is served
    assert {name for name, _labels in scrape(port)} & {f"queue_job_runner_{g}" for g in GAUGES} == set()
    assert scrape(port)[("queue_job_runner_up", ())] == 0


def test_status_warns_when_the_runners_of_one_odoo_exceed_its_workers(qdb, pg_cluster, procs):
    executor = start_executor(pg_cluster)
    procs.append(executor)
    target = f"localhost:{executor.port}"  # the runners say 127.0.0.1: the same Odoo
    over = [start_runner(pg_cluster, [qdb.name], executor.port, "--channels", "root:2",
                         "--executor-workers", "2") for _ in range(3)]
    procs.extend(over)
    wait_until(lambda: registered_runners(qdb) == 3)
    [report] = json.loads(status(pg_cluster, qdb, "--json"))
    [group] = report["executors"]
    assert (group["executor"], group["runners"], group["capacity"], group["workers"], group["over"]) == \
        (target, 3, 6, 2, True)
    assert (f"warning: runners targeting {target} on {group['host']} have total capacity 6 but that "
            "Odoo has 2 HTTP workers: jobs will wait in its backlog; lower channels root capacity "
            "(see the guide's Sizing)") in status(pg_cluster, qdb)
    for runner in over:
        assert runner.terminate(timeout=60) == 0

    # sized as the guide says: root:1 on each of two runners, 2 workers
    within = [start_runner(pg_cluster, [qdb.name], executor.port, "--channels", "root:1",
                           "--executor-workers", "2") for _ in range(2)]
    procs.extend(within)
    wait_until(lambda: registered_runners(qdb) == 2)
    [report] = json.loads(status(pg_cluster, qdb, "--json"))
    assert [(g["capacity"], g["workers"], g["over"]) for g in report["executors"]] == [(2, 2, False)]
    assert "warning:" not in status(pg_cluster, qdb)
