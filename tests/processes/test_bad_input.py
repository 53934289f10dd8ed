"""Bad input: each row of migration_guide/bad_input.rst is a case here, and
each case is a row there. Configuration errors exit 2 with one line naming
the value and the fix; bad requests and bad job rows cost one log line or
one failed job, never the runner or the other jobs."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from jobrunner import config, schema
from jobrunner.errors import ConfigError
from jobrunner.testing.pgcluster import free_port

from jobrunner.testing.fixtures import (http_get, registered_runners, start_executor, start_runner,
                                       wait_until)

DOC = Path(__file__).resolve().parents[2] / "migration_guide" / "bad_input.rst"

# id, argv after "run" (or a full command), environment, [section] text of a -c file, fragment
CONFIG_CASES = [
    ("channels-capacity", ["--channels", "root:x"], {}, None,
     "invalid --channels value 'root:x': capacity 'x' of 'root' is not an integer"),
    ("channels-negative", ["--channels", "root:-1"], {}, None, "capacity of 'root' is negative"),
    ("channels-no-name", ["--channels", "root:4,:2"], {}, None, "missing channel name in ':2'"),
    ("channels-bad-name", ["--channels", "root:4,a..b:1"], {}, None, "bad channel name 'a..b'"),
    ("channels-sequential", ["--channels", "root:4,sub:2:sequential"], {}, None,
     "sequential channel 'sub' must have capacity 1"),
    ("channels-throttle", ["--channels", "root:4,sub:1:throttle=soon"], {}, None,
     "throttle 'soon' of 'sub' must be a whole number of seconds >= 0"),
    ("channels-throttle-negative", ["--channels", "root:4,sub:1:throttle=-3"], {}, None,
     "throttle '-3' of 'sub'"),
    ("channels-empty-option", ["--channels", "root:4,sub:1:"], {}, None, "empty option in 'sub:1:'"),
    ("channels-unknown-option", ["--channels", "root:4,long:2:isolate"], {}, None,
     "unknown option 'isolate' of 'long'; use global, isolated, sequential, throttle"),
    ("channels-isolated-capacity", ["--channels", "root:4,long:0:isolated"], {}, None,
     "isolated channel 'long' needs a capacity of its own"),
    ("channels-env", [], {"ODOO_QUEUE_JOB_CHANNELS": "root:zz"}, None,
     "invalid ODOO_QUEUE_JOB_CHANNELS value 'root:zz'"),
    ("channels-conf", [], {}, "[queue_job]\nchannels = root:2,x:y\n",
     "invalid [queue_job] channels value 'root:2,x:y'"),
    ("wakeup", ["--wakeup", "sometimes"], {}, None,
     "invalid --wakeup value 'sometimes': use one of notify, poll"),
    ("wakeup-conf", [], {}, "[queue_job]\nwakeup = push\n", "invalid [queue_job] wakeup value 'push'"),
    ("poll-min", ["--poll-min", "abc"], {}, None, "invalid --poll-min value 'abc': expected a number"),
    ("poll-max-below-min", ["--poll-min", "1", "--poll-max", "0.01"], {}, None,
     "invalid --poll-max value '0.01': must be >= 1"),
    ("grace", ["--grace", "-1"], {}, None, "invalid --grace value '-1': must be >= 0"),
    ("recovery-interval", ["--recovery-interval", "0"], {}, None,
     "invalid --recovery-interval value '0': must be >= 0.1"),
    ("http-timeout", ["--http-timeout", "0"], {}, None, "invalid --http-timeout value '0': must be >= 0.1"),
    ("db-timeout", [], {"ODOO_QUEUE_JOB_DB_TIMEOUT": "0"}, None,
     "invalid ODOO_QUEUE_JOB_DB_TIMEOUT value '0': must be >= 1"),
    ("port-text", ["--port", "eighty"], {}, None, "invalid --port value 'eighty': expected an integer"),
    ("port-range", ["--port", "70000"], {}, None, "invalid --port value '70000': must be <= 65535"),
    ("port-env", [], {"ODOO_QUEUE_JOB_PORT": "eighty"}, None, "invalid ODOO_QUEUE_JOB_PORT value 'eighty'"),
    ("executor-workers", ["--executor-workers", "0"], {}, None,
     "invalid --executor-workers value '0': must be >= 1"),
    ("scheme", ["--scheme", "ftp"], {}, None, "invalid --scheme value 'ftp': use http or https"),
    ("log-level", ["--log-level", "verbose"], {}, None,
     "invalid --log-level value 'verbose': use one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("log-format", [], {"ODOO_QUEUE_JOB_LOG_FORMAT": "xml"}, None,
     "invalid ODOO_QUEUE_JOB_LOG_FORMAT value 'xml': use one of text, json"),
    ("log-file", ["--log-file", "/nonexistent/dir/runner.log"], {}, None,
     "invalid --log-file value '/nonexistent/dir/runner.log': No such file or directory; "
     "fix the path or its permissions"),
    ("log-file-conf", [], {}, "[queue_job]\nlog_file = /nonexistent/runner.log\n",
     "invalid [queue_job] log_file value '/nonexistent/runner.log'"),
    ("db-port", ["--db-port", "x"], {}, None, "invalid --db-port value 'x': expected an integer"),
    ("db-port-conf", [], {}, "[options]\ndb_port = fivefourthreetwo\n",
     "invalid [options] db_port value 'fivefourthreetwo'"),
    ("config-missing", ["-c", "/nonexistent/odoo.conf"], {}, None,
     "cannot read config file '/nonexistent/odoo.conf': No such file or directory; fix the -c path"),
    ("config-not-ini", [], {}, "channels = root:4\n", "is not valid ini"),
    ("migrate-no-database", ["migrate"], {}, None, "migrate needs --database NAME"),
    ("unknown-option", ["--bogus"], {}, None, "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_configuration_exits_2_with_one_line(case, tmp_path):
    _id, argv, env, conf, fragment = case
    if argv[:1] != ["migrate"]:
        argv = ["run", "-d", "x", *argv]
    if conf is not None:
        path = tmp_path / "odoo.conf"
        path.write_text(conf)
        argv += ["-c", str(path)]
    res = subprocess.run([sys.executable, "-m", "jobrunner", *argv], capture_output=True, text=True,
                         timeout=60, env={"PATH": "/usr/bin:/bin", **env})
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if not line.startswith("usage:")]
    assert len(lines) == 1, res.stderr  # argparse adds its usage line before its error
    assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("source, value", [("ODOO_QUEUE_JOB_SKIP_LOCKED", "maybe"),
                                           ("[queue_job] skip_locked", "perhaps")],
                         ids=["flag-env", "flag-conf"])
def test_bad_flag_value_is_named(source, value):
    env, conf = ({source: value}, {}) if source.startswith("ODOO") else ({}, {"skip_locked": value})
    with pytest.raises(ConfigError, match=re.escape(f"invalid {source} value {value!r}: use true or false")):
        config.skip_locked_flag(env, conf)


def test_nonexistent_database_is_retried_with_one_line_per_attempt(pg_cluster, procs):
    runner = start_runner(pg_cluster, ["no_such_db"], free_port(), "--channels", "root:1")
    procs.append(runner)
    wait_until(lambda: runner.output().count('database "no_such_db" does not exist') >= 2, timeout=30,
               message="two attempts")
    assert runner.alive()
    lines = [line for line in runner.output().splitlines() if "no_such_db" in line]
    assert all("retrying in" in line for line in lines), lines


def test_database_without_queue_job_is_refused_by_run(stock_db, pg_cluster):
    stock_db.execute("UPDATE ir_module_module SET state = 'uninstalled' WHERE name = 'queue_job'")
    res = subprocess.run([sys.executable, "-m", "jobrunner", "run", "--db-host", pg_cluster.host,
                          "--db-port", str(pg_cluster.port), "--db-user", pg_cluster.user,
                          "--database", stock_db.name], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "queue_job is not installed" in res.stderr


def test_no_database_found_is_refused(stock_db, pg_cluster):
    """Discovery (no --database): stock_db has queue_job but not our schema."""
    res = subprocess.run([sys.executable, "-m", "jobrunner", "run", "--db-host", pg_cluster.host,
                          "--db-port", str(pg_cluster.port), "--db-user", pg_cluster.user],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stderr
    last = res.stderr.splitlines()[-1]
    assert last == ("queue-job-runner: error: no database with queue_job and the queue_job_skiplocked "
                    "schema found; give --database NAME (and run queue-job-runner migrate)")
    assert f"[schema-missing] db={stock_db.name}" in res.stderr  # and which one lacks it


def test_postgresql_older_than_9_5_is_refused(pg_cluster):
    """The check reads the server version of a real connection; an old
    server is simulated by the one attribute psycopg2 exposes."""
    from types import SimpleNamespace

    from jobrunner import db

    conn = db.connect({"host": pg_cluster.host, "port": pg_cluster.port, "user": pg_cluster.user},
                      "postgres")
    try:
        db.check_server_version(conn)  # the real one passes
    finally:
        conn.close()
    with pytest.raises(ConfigError) as exc:
        db.check_server_version(SimpleNamespace(server_version=90400))
    assert str(exc.value) == ("PostgreSQL 9.4 is too old: FOR UPDATE SKIP LOCKED needs 9.5 or later "
                              "(12+ supported); upgrade PostgreSQL")


def _get(port, query):
    return http_get(port, f"/queue_job/runjob?{query}", timeout=30)[0]


def test_bad_runjob_requests_do_nothing_and_say_why(qdb, pg_cluster, procs):
    executor = start_executor(pg_cluster)
    procs.append(executor)
    [job, stock] = qdb.insert_jobs(2)
    uuid, stock_uuid = (qdb.scalar("SELECT uuid FROM queue_job WHERE id = %s", (i,)) for i in (job, stock))
    qdb.execute("UPDATE queue_job SET state = 'enqueued', claimed_by = 1, claim_token = 'tok' "
                "WHERE id = %s", (job,))
    # as a stock runner leaves a job: enqueued, no token; and the flag on
    qdb.execute("UPDATE queue_job SET state = 'enqueued' WHERE id = %s", (stock,))
    with qdb.conn.cursor() as cr:
        schema.apply_flag(cr, True)
    db = qdb.name
    cases = {  # id: (query, status, log fragment)
        "runjob-no-token": (f"db={db}&job_uuid={uuid}", 200, "the request has no token: nothing done"),
        "runjob-tokenless-job": (f"db={db}&job_uuid={stock_uuid}", 200,
                                 "it has no claim token (left enqueued by a stock runner?)"),
        "runjob-wrong-token": (f"db={db}&job_uuid={uuid}&token=nope", 200,
                               "the request's token is not the job's current claim"),
        "runjob-unknown-job": (f"db={db}&job_uuid=no-such-uuid&token=tok", 200,
                               "uuid=no-such-uuid: was requested to run the job, but it does not exist"),
        "runjob-other-database": (f"db=no_such_db&job_uuid={uuid}&token=tok", 503,
                                  "[runjob-db-unreachable] db=no_such_db"),
        "runjob-missing-parameter": (f"db={db}&token=tok", 400, "missing db or job_uuid"),
    }
    for case_id, (query, status, fragment) in cases.items():
        assert _get(executor.port, query) == status, case_id
        wait_until(lambda: fragment in executor.output(), message=f"{case_id}: {fragment}")
    assert qdb.execute("SELECT state FROM queue_job ORDER BY id") == [("enqueued",)] * 2  # nothing ran
    assert _get(executor.port, f"db={db}&job_uuid={uuid}&token=tok") == 200
    assert qdb.execute("SELECT state FROM queue_job WHERE id = %s", (job,)) == [("done",)]  # it still can


def test_bad_job_rows_cost_themselves_only(qdb, pg_cluster, procs):
    rows = {  # id: (SET clause for one job, expected end state)
        "row-unknown-channel": ("channel = 'no.such.channel'", "done"),
        "row-null-priority": ("priority = NULL", "done"),
        "row-null-date-created": ("date_created = NULL", "done"),
        "row-eta-infinity": ("eta = 'infinity'", "pending"),
        "row-eta-minus-infinity": ("eta = '-infinity'", "done"),
        "row-sql-channel": ("channel = 'x''; DROP TABLE queue_job; --'", "done"),
        "row-empty-channel": ("channel = ''", "done"),
        "row-unknown-method": ("method_name = 'no_such_method'", "failed"),
        "row-args-not-json": ("args = '\"not a list'", "failed") if qdb.version == "17" else
                             ("args = '\"not a list\"'::jsonb", "failed"),
        "row-unknown-state": ("state = 'weird'", "weird"),
    }
    ids = qdb.insert_jobs(len(rows))
    for job_id, (sql, _end) in zip(ids, rows.values()):
        qdb.execute(f"UPDATE queue_job SET {sql} WHERE id = %s", (job_id,))
    executor = start_executor(pg_cluster)
    procs.append(executor)
    runner = start_runner(pg_cluster, [qdb.name], executor.port, "--channels", "root:2,root.a:1")
    procs.append(runner)
    expected = {job_id: end for job_id, (_sql, end) in zip(ids, rows.values())}

    def ends():
        return dict(qdb.execute("SELECT id, state FROM queue_job WHERE id = ANY(%s)", (ids,)))

    wait_until(lambda: ends() == expected, timeout=60, message="every row to end as designed")
    assert runner.alive() and registered_runners(qdb) == 1
    failed = dict(qdb.execute("SELECT method_name, exc_message FROM queue_job WHERE state = 'failed'"))
    assert "unknown job method 'no_such_method'" in failed["no_such_method"]
    # a dead job with NULL max_retries is retried (OCA: NULL/0 is infinite)
    [dead] = qdb.insert_jobs(1)
    qdb.execute("UPDATE queue_job SET state = 'started', max_retries = NULL, "
                "date_started = now() AT TIME ZONE 'utc' - interval '1 hour' WHERE id = %s", (dead,))
    wait_until(lambda: qdb.scalar("SELECT state FROM queue_job WHERE id = %s", (dead,)) == "done",
               timeout=60, message="row-null-max-retries: requeued and run")


def test_doc_table_and_tests_agree():
    text = DOC.read_text()
    documented = set(re.findall(r"^   \* - ``([a-z0-9-]+)``", text, re.MULTILINE))
    here = Path(__file__).read_text()
    tested = {c[0] for c in CONFIG_CASES} | set(re.findall(r'"((?:runjob|row|flag)-[a-z0-9-]+)[":]', here))
    elsewhere = {  # id: the test that shows it
        "db-unreachable": "tests/processes/test_config.py::test_unreachable_database_is_retried_with_one_line_per_attempt",
        "db-does-not-exist": "tests/processes/test_bad_input.py::test_nonexistent_database_is_retried_with_one_line_per_attempt",
        "db-not-installed": "tests/processes/test_bad_input.py::test_database_without_queue_job_is_refused_by_run",
        "db-not-migrated": "tests/processes/test_config.py::test_database_without_our_schema_is_refused",
        "notify-through-pooler":
            "tests/processes/test_pgbouncer.py::test_notify_mode_through_transaction_pooling_is_refused",
        "no-database-found": "tests/processes/test_bad_input.py::test_no_database_found_is_refused",
        "postgres-too-old": "tests/processes/test_bad_input.py::test_postgresql_older_than_9_5_is_refused",
    }
    root = Path(__file__).resolve().parents[2]
    for case_id, where in elsewhere.items():
        path, name = where.split("::")
        assert f"def {name}(" in (root / path).read_text(), case_id
    tested |= set(elsewhere)
    assert len(documented) >= 30
    assert documented == tested, (documented ^ tested)
    for case_id, _argv, _env, _conf, fragment in CONFIG_CASES:
        assert fragment.split(": ")[-1][:30] in text, case_id
