"""Log lines of real processes carry their context (database, runner id,
job uuid) as fields, in text or JSON; tests/unit/test_logs.py ties every
event to migration_guide/troubleshooting.rst."""

import json
import re

from jobrunner.testing.fixtures import (registered_runners, start_executor, start_runner,
                                       stuck_runner, wait_until)


def test_json_lines_carry_db_runner_and_job_uuid(qdb, pg_cluster, procs):
    """A dead runner's claims recovered, then run, then a stop, all in JSON:
    each line parses, names an event, and says which runner and which job."""
    with stuck_runner(pg_cluster, qdb, procs, 3) as stuck:
        stuck.kill()
    stuck_uuids = {u for (u,) in qdb.execute("SELECT uuid FROM queue_job")}
    uuids = stuck_uuids | {u for (u,) in qdb.execute(
        "SELECT uuid FROM queue_job WHERE id = ANY(%s)", (qdb.insert_jobs(5),))}
    executor = start_executor(pg_cluster)
    procs.append(executor)
    runner = start_runner(pg_cluster, [qdb.name], executor.port, "--log-format", "json",
                          "--log-level", "DEBUG", "--recovery-interval", "0.5")
    procs.append(runner)
    wait_until(lambda: qdb.states() == {"done": 8}, timeout=60, message="all 8 jobs done")
    wait_until(lambda: runner.output().count('"event": "job-finished"') == 8,
               message="the end of every claim")
    assert runner.terminate() == 0
    lines = [json.loads(line) for line in runner.output().splitlines()]  # every line is JSON
    assert all(line["event"] and line["level"] and line["time"].endswith("Z") and line["pid"]
               for line in lines), lines
    [connected] = [line for line in lines if line["event"] == "connected"]
    me = connected["runner"]
    assert isinstance(me, int) and connected["db"] == qdb.name
    assert all(line["runner"] == me for line in lines if "db" in line)
    by_event = {}
    for line in lines:
        by_event.setdefault(line["event"], []).append(line)
    assert {line["uuid"] for line in by_event["job-requeued"]} == stuck_uuids
    assert {line["uuid"] for line in by_event["job-claimed"]} == uuids
    assert {line["uuid"] for line in by_event["job-finished"]} == uuids
    assert all(line["channel"] == "root" for line in by_event["job-claimed"])
    assert all(line["msg"] == "claim over: job done" for line in by_event["job-finished"])
    assert by_event["dead-runner-removed"] and by_event["stopping"]


def test_text_lines_name_event_db_runner_and_uuid(qdb, pg_cluster, procs):
    executor = start_executor(pg_cluster)
    procs.append(executor)
    runner = start_runner(pg_cluster, [qdb.name], executor.port, "--log-level", "DEBUG")
    procs.append(runner)
    wait_until(lambda: registered_runners(qdb) == 1)
    [job] = qdb.insert_jobs(1)
    uuid = qdb.scalar("SELECT uuid FROM queue_job WHERE id = %s", (job,))
    me = qdb.scalar("SELECT id FROM queue_job_runner")
    wait_until(lambda: "[job-finished]" in runner.output(), message="the job to end")
    pattern = (r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ DEBUG jobrunner\.runner \[job-claimed\] "
               rf"db={qdb.name} runner={me} uuid={uuid} channel=root: claimed \(priority 10\)$")
    assert re.search(pattern, runner.output(), re.MULTILINE), runner.output()


def test_log_file_gets_the_lines_and_is_reopened_after_logrotate(qdb, pg_cluster, procs, tmp_path):
    """--log-file (the embedded runner gets Odoo's logfile): lines go there,
    not to stderr, and a file moved away by logrotate is replaced."""
    path = tmp_path / "runner.log"
    executor = start_executor(pg_cluster)
    procs.append(executor)
    runner = start_runner(pg_cluster, [qdb.name], executor.port, "--log-file", str(path),
                          "--log-level", "DEBUG")
    procs.append(runner)
    wait_until(lambda: path.exists() and "[connected]" in path.read_text(), message="the file's lines")
    path.rename(tmp_path / "runner.log.1")  # logrotate without copytruncate
    [job] = qdb.insert_jobs(1)
    uuid = qdb.scalar("SELECT uuid FROM queue_job WHERE id = %s", (job,))
    wait_until(lambda: path.exists() and f"[job-finished] db={qdb.name}" in path.read_text(),
               message="lines in the new file")
    assert uuid in path.read_text()
    assert "[connected]" not in runner.output()  # nothing on stderr
