"""Configuration: OCA's names and precedence, and one-line errors for bad values."""

import subprocess
import sys


from jobrunner import config
from jobrunner.channels import ChannelTree, parse_channels

from jobrunner.testing.fixtures import wait_until
from jobrunner.testing.fixtures import Proc, registered_runners, start_executor


def build(argv=(), environ=None):
    from jobrunner.cli import parser

    args = parser().parse_args(["run", *argv])
    return config.build(args, environ or {})


def test_oca_environment_variables_are_read():
    cfg = build(environ={
        "ODOO_QUEUE_JOB_CHANNELS": "root:4,sub:2",
        "ODOO_QUEUE_JOB_SCHEME": "https",
        "ODOO_QUEUE_JOB_HOST": "odoo.internal",
        "ODOO_QUEUE_JOB_PORT": "8070",
        "ODOO_QUEUE_JOB_HTTP_AUTH_USER": "u",
        "ODOO_QUEUE_JOB_HTTP_AUTH_PASSWORD": "secret",
        "ODOO_QUEUE_JOB_JOBRUNNER_DB_HOST": "pg",
        "ODOO_QUEUE_JOB_JOBRUNNER_DB_PORT": "6432",
        "ODOO_QUEUE_JOB_JOBRUNNER_DB_USER": "odoo",
        "ODOO_QUEUE_JOB_JOBRUNNER_DB_PASSWORD": "pw",
    })
    assert (cfg.channels, cfg.scheme, cfg.host, cfg.port) == ("root:4,sub:2", "https", "odoo.internal", 8070)
    assert (cfg.http_auth_user, cfg.http_auth_password) == ("u", "secret")
    assert cfg.db == {"host": "pg", "port": 6432, "user": "odoo", "password": "pw"}
    assert "secret" not in repr(cfg) and "pw" not in repr(cfg)


def test_precedence_cli_then_env_then_odoo_conf(tmp_path):
    conf = tmp_path / "odoo.conf"
    conf.write_text("[options]\ndb_host = confhost\ndb_port = 5433\ndb_user = confuser\n"
                    "db_name = a, b\nhttp_port = 8080\nhttp_interface = 10.0.0.5\ndb_password = False\n"
                    "[queue_job]\nchannels = root:2\njobrunner_db_host = qjhost\nwakeup = poll\n")
    cfg = build(["-c", str(conf)])
    assert cfg.channels == "root:2" and cfg.wakeup == "poll"
    assert cfg.db == {"host": "qjhost", "port": 5433, "user": "confuser"}  # "False" is unset
    assert cfg.databases == ["a", "b"] and (cfg.host, cfg.port) == ("10.0.0.5", 8080)
    cfg = build(["-c", str(conf)], {"ODOO_QUEUE_JOB_CHANNELS": "root:3",
                                    "ODOO_QUEUE_JOB_JOBRUNNER_DB_HOST": "envhost"})
    assert cfg.channels == "root:3" and cfg.db["host"] == "envhost"
    cfg = build(["-c", str(conf), "--channels", "root:5", "--db-host", "clihost", "-d", "c"],
                {"ODOO_QUEUE_JOB_CHANNELS": "root:3"})
    assert cfg.channels == "root:5" and cfg.db["host"] == "clihost" and cfg.databases == ["c"]


def test_channel_parsing_follows_oca():
    tree = parse_channels("root : 4,\n sub:2 ,\n root.sub.deep:1:throttle=5:global\n,\n")
    names = {c.name: c for c in tree.channels}
    assert names["root"].capacity == 4 and names["root.sub"].capacity == 2
    deep = names["root.sub.deep"]
    assert deep.capacity == 1 and deep.throttle == 5 and deep.options["global"] is True
    assert tree.bucket_of("root.sub.deep.x") == tree.channels.index(deep)
    assert tree.bucket_of("sub.other") == tree.channels.index(names["root.sub"])
    assert tree.bucket_of(None) == 0 and tree.bucket_of("unknown") == 0
    assert ChannelTree("sub:0").channels[1].capacity is None  # 0 on a subchannel: unlimited
    assert ChannelTree("sub:3").root_capacity == 1  # root defaults to 1


def test_unreachable_database_is_retried_with_one_line_per_attempt(pg_cluster):
    runner = Proc(["-m", "jobrunner", "run", "--db-host", "127.0.0.1", "--db-port", "1",
                   "--database", "nowhere", "--db-password", "s3cret-pw"])
    try:
        wait_until(lambda: runner.output().count("unreachable") >= 3, timeout=30,
                   message="three connection attempts")
        assert runner.alive()  # no crash loop
        lines = [line for line in runner.output().splitlines() if "unreachable" in line]
        assert all("127.0.0.1:1/nowhere" in line and "retrying in" in line for line in lines)
        assert "Traceback" not in runner.output()
        assert "s3cret-pw" not in runner.output()
        assert runner.terminate() == 0
    finally:
        runner.close()


def test_oca_variables_drive_a_real_runner(qdb, pg_cluster):
    executor = start_executor(pg_cluster)
    env = {"ODOO_QUEUE_JOB_CHANNELS": "root:2", "ODOO_QUEUE_JOB_HOST": "127.0.0.1",
           "ODOO_QUEUE_JOB_PORT": str(executor.port),
           "ODOO_QUEUE_JOB_JOBRUNNER_DB_HOST": pg_cluster.host,
           "ODOO_QUEUE_JOB_JOBRUNNER_DB_PORT": str(pg_cluster.port),
           "ODOO_QUEUE_JOB_JOBRUNNER_DB_USER": pg_cluster.user}
    # no --database: the runner discovers every database with queue_job and our schema
    runner = Proc(["-m", "jobrunner"], env=env)
    try:
        wait_until(lambda: registered_runners(qdb) == 1, message="runner to register")
        qdb.insert_jobs(20)
        wait_until(lambda: qdb.states() == {"done": 20}, message="jobs to run")
        assert runner.terminate() == 0
    finally:
        runner.close()
        executor.close()


def test_database_without_our_schema_is_refused(stock_db, pg_cluster):
    res = subprocess.run([sys.executable, "-m", "jobrunner", "run", "--db-host", pg_cluster.host,
                          "--db-port", str(pg_cluster.port), "--db-user", pg_cluster.user,
                          "--database", stock_db.name], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1
    assert f"queue-job-runner migrate --database {stock_db.name}" in res.stderr
