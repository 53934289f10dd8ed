"""`queue-job-runner migrate`: idempotent, leaves stock objects alone, clear errors."""

import subprocess
import sys

import pytest

from jobrunner import schema
from jobrunner.errors import DatabaseNotReady


def snapshot(db):
    """Everything migrate could touch: columns, indexes, triggers, tables."""
    return {
        "columns": db.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"),
        "indexes": db.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"),
        "triggers": db.execute(
            "SELECT trigger_name, event_manipulation, action_statement "
            "FROM information_schema.triggers ORDER BY 1, 2"),
        "functions": db.execute(
            "SELECT proname, md5(prosrc) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public' ORDER BY 1"),
    }


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "jobrunner", *args],
                          capture_output=True, text=True, timeout=60)


def test_migrate_is_idempotent_and_leaves_stock_schema_untouched(stock_db):
    before = snapshot(stock_db)
    res = run_cli("migrate", *stock_db.cli_args)
    assert res.returncode == 0, res.stderr
    once = snapshot(stock_db)
    res = run_cli("migrate", *stock_db.cli_args)
    assert res.returncode == 0, res.stderr
    assert snapshot(stock_db) == once  # second run changes nothing

    # stock trigger, functions and columns unchanged; only additions
    assert once["triggers"] == before["triggers"]
    assert len([t for t in once["triggers"] if t[0] == "queue_job_notify"]) == 3
    assert set(before["functions"]) <= set(once["functions"])  # stock functions untouched
    assert {f for f, _ in set(once["functions"]) - set(before["functions"])} == {
        "queue_job_skiplocked_channel", "queue_job_skiplocked_in_subtree"}  # only ours added
    assert set(before["columns"]) <= set(once["columns"])
    added = {(t, c) for t, c, *_ in set(once["columns"]) - set(before["columns"])}
    assert {("queue_job", "claimed_by"), ("queue_job", "claim_token")} <= added
    assert {t for t, _ in added} <= {"queue_job", "queue_job_runner", "queue_job_skiplocked_channel",
                                     "queue_job_skiplocked_version", "queue_job_periodic",
                                     "queue_job_periodic_tick"}
    assert set(before["indexes"]) <= set(once["indexes"])
    with stock_db.conn.cursor() as cr:
        schema.check_ready(cr, stock_db.name)


def test_migrate_refuses_database_without_queue_job(stock_db):
    stock_db.execute("UPDATE ir_module_module SET state = 'uninstalled' WHERE name = 'queue_job'")
    res = run_cli("migrate", *stock_db.cli_args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert f"'{stock_db.name}'" in lines[0] and "queue_job is not installed" in lines[0]
    assert stock_db.scalar("SELECT to_regclass('queue_job_runner') IS NULL")


def test_migrate_refuses_a_non_odoo_database(pg_cluster, stock_db):
    res = run_cli("migrate", *stock_db.cli_args[:-1], "postgres")
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "'postgres'" in res.stderr


def test_unreachable_database_is_one_clear_line(stock_db):
    res = run_cli("migrate", "--db-host", "127.0.0.1", "--db-port", "1", "--database", "x")
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1
    assert "cannot connect to database 127.0.0.1:1/x" in res.stderr


def test_check_ready_names_the_fix(stock_db):
    with stock_db.conn.cursor() as cr:
        with pytest.raises(DatabaseNotReady, match="queue-job-runner migrate --database"):
            schema.check_ready(cr, stock_db.name)


def test_migrations_are_recorded_and_a_newer_one_is_applied_on_upgrade(stock_db):
    """A database at an older schema version gets the missing migrations
    (replacing what changed) and nothing else; the runner refuses it until then."""
    stock_db.migrate()
    versions = stock_db.execute("SELECT version, name FROM queue_job_skiplocked_version ORDER BY 1")
    assert versions == [(v, name) for v, name in schema.migrations()]
    # as a database migrated by the release before version 2 looks
    stock_db.execute("DELETE FROM queue_job_skiplocked_version WHERE version >= 2; "
                     "DROP FUNCTION queue_job_skiplocked_in_subtree(text, text); "
                     "DROP FUNCTION queue_job_skiplocked_channel(text)")
    with stock_db.conn.cursor() as cr:
        assert schema.schema_version(cr) == 1
        with pytest.raises(DatabaseNotReady, match="queue-job-runner migrate --database"):
            schema.check_ready(cr, stock_db.name)
    res = run_cli("migrate", *stock_db.cli_args)
    assert res.returncode == 0, res.stderr
    assert stock_db.scalar("SELECT queue_job_skiplocked_channel('sub')") == "root.sub"
    assert stock_db.scalar("SELECT count(*) FROM queue_job_skiplocked_version") == schema.VERSION


def test_the_sql_channel_rule_is_the_python_one(qdb):
    from jobrunner.plan import normalize_channel, within

    names = [None, "", "root", "sub", "root.sub", "root.sub.x", "subx", "root.su", "r_t%", "root.r_t%"]
    tops = ["root", "root.sub", "root.su", "root.r_t%"]
    rows = qdb.execute(
        "SELECT n, t, queue_job_skiplocked_channel(n), queue_job_skiplocked_in_subtree(n, t) "
        "FROM unnest(%s::text[]) n, unnest(%s::text[]) t", (names, tops))
    assert len(rows) == len(names) * len(tops)
    for name, top, sql_name, sql_within in rows:
        assert sql_name == normalize_channel(name), name
        assert sql_within == within(normalize_channel(name), top), (name, top)
