"""Every SQL path the Odoo addon uses, exercised without Odoo (CI has none):
the controller's token lock, the trigger switch, the ORM claim, the flag and
the embedded runner's command line."""

import threading

import pytest

from jobrunner import claim, config, logs, queries, runjob, schema
from jobrunner.cli import parser
from jobrunner.errors import ConfigError
from jobrunner.settings import SETTINGS

from jobrunner.testing.fixtures import wait_until


_log = logs.Log(__name__, inline=True)


def runjob_lock(db, uuid, token):
    """The controller's acquisition (runjob.acquire with the controller's
    statement), in a REPEATABLE READ transaction like Odoo's."""
    conn = db.connect()
    conn.autocommit = False
    conn.set_session(isolation_level="REPEATABLE READ")

    def try_lock(cr):
        conn.rollback()  # as the controller does: a fresh snapshot per attempt
        cr.execute(queries.get("runjob_lock"), {"uuid": uuid, "token": token})
        return cr.fetchone()

    try:
        with conn.cursor() as cr:
            locked = runjob.acquire(cr, uuid, token, try_lock, _log) is not None
            cr.execute(queries.get("runjob_claim_of"), {"uuid": uuid, "token": token})
            why = cr.fetchone()
        return locked, why, conn
    except Exception:
        conn.close()
        raise


def test_runjob_lock_needs_the_current_token(qdb):
    qdb.insert_jobs(1)
    with qdb.conn.cursor() as cr:
        [job], _ = claim.claim_channels(cr, 1, 1)
    locked, why, conn = runjob_lock(qdb, job.uuid, "stale")
    conn.close()
    assert not locked and why == ("enqueued", True, False)
    locked, why, conn = runjob_lock(qdb, job.uuid, None)  # no token for a claimed job
    conn.close()
    assert not locked and why == ("enqueued", True, False)
    locked, why, first = runjob_lock(qdb, job.uuid, job.token)
    assert locked
    # a duplicate request races: SKIP LOCKED, no wait, no serialization error
    done = []
    t = threading.Thread(target=lambda: done.append(runjob_lock(qdb, job.uuid, job.token)))
    t.start()
    t.join(timeout=10)
    assert done and done[0][0] is False and done[0][1] == ("enqueued", True, True)
    done[0][2].close()
    first.rollback()
    first.close()


def test_a_tokenless_enqueued_job_is_started_by_no_request_and_handed_back_at_once(qdb):
    """A job a stock runner left enqueued (no token) runs from no request,
    whatever it carries; with the flag on, recovery hands it back to pending
    at once and it is run once, by a runner's claim."""
    [job_id] = qdb.insert_jobs(1, state="enqueued")
    qdb.execute("UPDATE queue_job SET date_enqueued = now() AT TIME ZONE 'utc'")
    uuid = qdb.scalar("SELECT uuid FROM queue_job WHERE id = %s", (job_id,))
    for token in (None, "", "0123456789abcdef-1"):
        locked, why, conn = runjob_lock(qdb, uuid, token)
        conn.close()
        assert not locked and why[:2] == ("enqueued", False), token
    with qdb.conn.cursor() as cr:
        assert claim.recover(cr, 0) == []  # flag off: the stock runner's, within its grace
        schema.apply_flag(cr, True)
        assert [(r[0], r[2]) for r in claim.recover(cr, 0)] == [
            (job_id, "enqueued without a claim token")]
        assert qdb.scalar("SELECT state FROM queue_job WHERE id = %s", (job_id,)) == "pending"
        [job], _ = claim.claim_channels(cr, 1, 1)
    assert job.id == job_id and job.token
    locked, _why, conn = runjob_lock(qdb, uuid, job.token)
    conn.close()
    assert locked


def test_tokens_are_independent_per_job(qdb):
    """One token seen (in a log) tells nothing of another: no shared
    prefix, no job id in it."""
    qdb.insert_jobs(50)
    with qdb.conn.cursor() as cr:
        jobs, _ = claim.claim_channels(cr, 1, 50)
    tokens = [j.token for j in jobs]
    assert len(jobs) == 50 and len(set(tokens)) == 50
    assert all(len(t) == 32 and int(t, 16) >= 0 for t in tokens)
    assert not any(str(j.id) in j.token.split("-") for j in jobs)
    assert len({t[:4] for t in tokens}) > 25  # a shared prefix would give 1


def test_trigger_switch_follows_the_flag(qdb):
    with qdb.conn.cursor() as cr:
        assert schema.stock_trigger_present(cr)
        assert schema.apply_flag(cr, True) == "dropped"
        assert not schema.stock_trigger_present(cr)
        assert schema.apply_flag(cr, True) is None
        assert schema.apply_flag(cr, False) == "restored"
        assert schema.stock_trigger_present(cr)
        assert schema.apply_flag(cr, False) is None
    # the restored trigger is the stock one: it notifies on job writes
    listener = qdb.connect()
    with listener.cursor() as cr:
        cr.execute("LISTEN queue_job")
    qdb.insert_jobs(1)

    def notified():
        listener.poll()
        return listener.notifies

    assert [n.channel for n in wait_until(notified, timeout=10, message="the NOTIFY")] == ["queue_job"]
    listener.close()


def test_migrate_inside_a_transaction_like_the_addon(qdb):
    conn = qdb.connect()
    conn.autocommit = False
    with conn.cursor() as cr:
        schema.migrate(cr, qdb.name)  # the addon's init(): inside Odoo's transaction
    conn.commit()
    conn.close()


def test_orm_claim_without_owner(qdb):
    qdb.insert_jobs(3, channel="root.batch")
    with qdb.conn.cursor() as cr:
        jobs, _ = claim.claim_channels(cr, None, 2, ["root.batch"])
    assert len(jobs) == 2 and all(j.token for j in jobs)
    assert qdb.execute("SELECT DISTINCT claimed_by FROM queue_job WHERE state = 'enqueued'") == [(None,)]


@pytest.mark.parametrize("value, expected", [
    ("true", True), ("True", True), ("1", True), ("on", True),
    ("false", False), ("0", False), ("No", False), (None, False), ("", False),
])
def test_flag_values(value, expected):
    assert config.skip_locked_flag({"ODOO_QUEUE_JOB_SKIP_LOCKED": value} if value is not None else {},
                                   {}) is expected


def test_flag_bad_value_names_it_and_env_wins():
    with pytest.raises(ConfigError, match="invalid ODOO_QUEUE_JOB_SKIP_LOCKED value 'maybe'"):
        config.skip_locked_flag({"ODOO_QUEUE_JOB_SKIP_LOCKED": "maybe"}, {})
    with pytest.raises(ConfigError, match=r"invalid \[queue_job\] skip_locked value 'yess'"):
        config.skip_locked_flag({}, {"skip_locked": "yess"})
    assert config.skip_locked_flag({"ODOO_QUEUE_JOB_SKIP_LOCKED": "false"}, {"skip_locked": "true"}) is False


def test_embedded_runner_command_reproduces_odoo_config():
    options = {"db_host": "pg", "db_port": "5433", "db_user": "odoo", "db_password": "pw",
               "db_name": "a,b", "http_interface": "127.0.0.1", "http_port": "8070"}
    cfg = config.resolve({}, {"ODOO_QUEUE_JOB_CHANNELS": "root:3"},
                         {"wakeup": "poll", "log_format": "json", "log_file": "/var/log/odoo/q.log"},
                         options)
    argv, env = config.child_command(cfg)
    assert "pw" not in " ".join(argv)  # the password travels in the environment
    again = config.build(parser().parse_args(argv), environ=env)
    for setting in SETTINGS:  # every setting of the table, metrics_port/host included
        assert config.get(again, setting) == config.get(cfg, setting), setting.name
    assert again.databases == ["a", "b"] and again.port == 8070 and again.db["password"] == "pw"
    assert again.log_format == "json"


def _schema_of(db):
    """queue_job's columns, every index and table and trigger of the database."""
    return {
        "columns": db.execute("SELECT column_name, data_type FROM information_schema.columns "
                              "WHERE table_name = 'queue_job' ORDER BY 1"),
        "indexes": db.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                              "ORDER BY 1"),
        "tables": db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"),
        "triggers": db.execute("SELECT tgname, tgrelid::regclass::text FROM pg_trigger "
                               "WHERE NOT tgisinternal ORDER BY 1"),
    }


def test_uninstall_leaves_stock_queue_job_as_it_was(stock_db):
    stock = _schema_of(stock_db)
    stock_db.migrate()
    with stock_db.conn.cursor() as cr:
        schema.apply_flag(cr, True)  # installed and switched on
    # a runner that died with a claim: its row, no lock held
    dead = stock_db.scalar("INSERT INTO queue_job_runner (host, pid) VALUES ('gone', 1) RETURNING id")
    [job_id] = stock_db.insert_jobs(1)
    stock_db.execute("UPDATE queue_job SET state = 'enqueued', claimed_by = %s, claim_token = 't', "
                     "date_enqueued = now() AT TIME ZONE 'utc' WHERE id = %s", (dead, job_id))
    with stock_db.conn.cursor() as cr:
        schema.uninstall(cr)  # the addon's uninstall_hook
    assert stock_db.execute("SELECT state, claimed_by FROM queue_job") == [("pending", None)]
    stock_db.uninstall_addon()  # the hook again (idempotent), then Odoo's own drops
    assert _schema_of(stock_db) == stock


def test_periodic_definition_queries(qdb):
    """queue.job.periodic's queries: the template read back from a job row,
    the latest tick per definition, NULL for the interval of cron ones."""
    [job_id] = qdb.insert_jobs(1)
    uuid = qdb.scalar("SELECT uuid FROM queue_job WHERE id = %s", (job_id,))
    template = qdb.scalar(queries.get("periodic_job_template"), {"uuid": uuid})
    assert template["channel"] == "root" and "method_name" in template
    assert not {"id", "uuid", "state", "date_created", "retry", "claim_token"} & set(template)
    [(cron_id,), (interval_id,)] = qdb.execute(
        "INSERT INTO queue_job_periodic (name, interval_seconds, cron) "
        "VALUES ('c', 0, '* * * * *'), ('i', 60, NULL) RETURNING id")
    qdb.execute(queries.get("periodic_interval_unset"), {"ids": [cron_id, interval_id]})
    assert qdb.execute("SELECT id, interval_seconds FROM queue_job_periodic ORDER BY id") == [
        (cron_id, None), (interval_id, 60)]
    qdb.execute(
        "INSERT INTO queue_job_periodic_tick (periodic_id, tick, skipped, job_uuid) VALUES "
        "(%(c)s, '2030-01-01 00:00', false, 'a'), (%(c)s, '2030-01-01 00:01', true, 'b')",
        {"c": cron_id})
    ticks = qdb.execute(queries.get("periodic_last_ticks"), {"ids": [cron_id, interval_id]})
    assert [(r[0], str(r[1]), r[2], r[3]) for r in ticks] == [
        (cron_id, "2030-01-01 00:01:00", True, "b")]
