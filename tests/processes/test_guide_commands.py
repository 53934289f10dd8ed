"""The migration guide's commands and examples, run as the guide shows them.

Blocks and commands are read from migration_guide/README.rst itself (and
the deploy/ files it links to), so a change there is a change here: the
odoo.conf of the embedded runner, the systemd unit's ExecStart, the
Kubernetes container's command and environment, `queue-job-runner migrate`, `-c odoo.conf` runners, `status`
(table and --json), the SQL checks, /healthz and /metrics. Only what must
differ on a test machine is substituted: paths, ports, the Odoo host (the
reference executor here), 0.0.0.0 (loopback only in tests).

test_guide.py walks the same guide with OCA's own runner before and after;
the Odoo commands (`odoo -c odoo.conf -d DB -u queue_job_skiplocked`) run in
real Odoo by the addon's tests (queue_job_skiplocked/tests)."""

import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import jobrunner
from jobrunner import config, schema
from jobrunner.testing.pgcluster import free_port

from jobrunner.testing.fixtures import (Proc, http_get, registered_runners, start_executor,
                                       wait_until)

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "migration_guide" / "README.rst"
# the guide's deployment examples, files of deploy/ it links to
SYSTEMD_UNIT = ROOT / "deploy" / "systemd" / "queue-job-runner.service"
K8S_DEPLOYMENT = ROOT / "deploy" / "kubernetes" / "queue-job-runner.yaml"
# the installed console script, as an operator runs it
RUNNER = str(Path(sys.executable).parent / "queue-job-runner")
if not os.path.exists(RUNNER):
    RUNNER = shutil.which("queue-job-runner")

# Every command the guide shows, and where it is exercised.
ODOO_PIP = "/path/to/odoo/venv/bin/python -m pip"  # never bin/pip: stale in a moved venv
UNINSTALL = ("echo \"env['ir.module.module'].search([('name', '=', 'queue_job_skiplocked')])"
             ".button_immediate_uninstall()\" | odoo shell -c odoo.conf -d DB --no-http")
EXERCISED = {
    "queue-job-runner migrate --database NAME": "test_the_guide_on_three_runners",
    "queue-job-runner -c odoo.conf": "test_the_guide_on_three_runners (its sized runner)",
    "queue-job-runner run -c odoo.conf": "test_the_guide_on_three_runners (its plain runner)",
    "queue-job-runner --version": "test_the_guide_install_commands",
    "queue-job-runner -c odoo.conf --channels root:1,root.export:1:sequential":
        "test_the_guide_on_three_runners (its sized runner)",
    "queue-job-runner status -c odoo.conf": "test_the_guide_on_three_runners",
    "queue-job-runner wait UUID --timeout 60 --database DB":
        "tests/processes/test_runner.py::test_queue_job_runner_wait_exit_codes",
    "queue-job-runner run -c /etc/odoo/odoo.conf --metrics-port 9187": "test_the_guide_on_three_runners",
    "queue-job-runner run -c /etc/odoo/odoo.conf --metrics-port 9187 --metrics-host 0.0.0.0":
        "test_the_guide_on_three_runners",
    ODOO_PIP + " install --no-deps /path/to/checkout 'cronsim>=2.6'": "test_the_guide_install_commands",
    ODOO_PIP + " install --no-deps -e /path/to/checkout 'cronsim>=2.6'":
        "test_the_guide_install_commands",
    "/path/to/venv/bin/python -m pip install /path/to/checkout": "test_the_guide_install_commands",
    ODOO_PIP + " uninstall -y queue-job-skiplocked": "test_the_guide_install_commands",
    "odoo -c odoo.conf -d DB -u queue_job_skiplocked --stop-after-init --no-http":
        "queue_job_skiplocked/tests/test_skiplocked.py (real Odoo; schema.apply_flag here)",
    "odoo -c odoo.conf -d DB -i queue_job_skiplocked --stop-after-init --no-http":
        "queue_job_skiplocked/tests (real Odoo: installed with -i; schema.migrate here)",
    UNINSTALL: "real Odoo (session notes); schema.uninstall in test_addon_sql.py",
}
# how a command line starts, inline or in a literal block
COMMAND = re.compile(r"^(?:(?:queue-job-runner|odoo) -|queue-job-runner \w|\S*pip (?:un)?install "
                     r"|\S+/python -m pip |echo .*\| odoo shell )")


def cmd_of(shown):
    """A command as the guide shows it (and as EXERCISED lists it)."""
    assert shown in EXERCISED, shown
    return shown


def _text():
    return GUIDE.read_text()


def literal_block(intro):
    """The indented block after the paragraph ending with `intro` + '::'."""
    text = _text()
    start = text.index(intro + "::") + len(intro) + 2
    lines = []
    for line in text[start:].lstrip("\n").splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    return "\n".join(lines).strip("\n")


def guide_commands():
    """The command lines the guide shows: inline literals, lines of literal
    blocks, the systemd unit's ExecStart, the Kubernetes container's command."""
    text = _text()
    inline = re.findall(r"``([^`]+)``", text.replace("\n   ", " ").replace("\n", " "))
    block_lines = [line.strip() for line in text.splitlines() if line.startswith("    ")]
    found = {c for c in inline + block_lines if COMMAND.match(c)}
    [exec_start] = re.findall(r"^ExecStart=(.*)$", SYSTEMD_UNIT.read_text(), re.MULTILINE)
    found.add(" ".join(["queue-job-runner", *shlex.split(exec_start)[1:]]))
    found.add(" ".join(_k8s()["command"]))
    return {" ".join(c.split()) for c in found}


def _k8s():
    pod = yaml.safe_load(K8S_DEPLOYMENT.read_text())["spec"]["template"]["spec"]
    [container] = pod["containers"]
    [port] = [p["containerPort"] for p in container["ports"] if p["name"] == "metrics"]
    probe = container["readinessProbe"]["httpGet"]
    assert probe["port"] == "metrics" and container["livenessProbe"]["httpGet"] == probe
    return {"command": container["command"], "env": {e["name"]: e["value"] for e in container["env"]},
            "grace": pod["terminationGracePeriodSeconds"], "port": port, "probe": probe["path"]}


def test_every_command_of_the_guide_is_exercised():
    assert guide_commands() == set(EXERCISED), guide_commands() ^ set(EXERCISED)


def _run(argv, env=None):
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, **(env or {})))
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_the_guide_on_three_runners(stock_db, pg_cluster, procs, tmp_path):
    db = stock_db
    executor = start_executor(pg_cluster)
    procs.append(executor)
    pg_env = {"PGHOST": pg_cluster.host, "PGPORT": str(pg_cluster.port), "PGUSER": pg_cluster.user}

    # The odoo.conf of the guide, plus what points it at this machine
    conf = configparser.RawConfigParser()
    conf.read_string(literal_block("``[queue_job] log_file`` gives it one of its own)"))
    flag_conf = configparser.RawConfigParser()
    flag_conf.read_string(literal_block("In odoo.conf (or ``ODOO_QUEUE_JOB_SKIP_LOCKED=true`` in the "
                                        "environment)"))
    for section in (conf, flag_conf):
        assert config.skip_locked_flag({}, dict(section.items("queue_job"))) is True
        assert "queue_job_skiplocked" in section.get("options", "server_wide_modules")
    conf.set("options", "db_host", pg_cluster.host)
    conf.set("options", "db_port", str(pg_cluster.port))
    conf.set("options", "db_user", pg_cluster.user)
    conf.set("options", "db_name", db.name)
    conf.set("queue_job", "host", "127.0.0.1")
    conf.set("queue_job", "port", str(executor.port))
    odoo_conf = tmp_path / "odoo.conf"
    with open(odoo_conf, "w") as f:
        conf.write(f)

    def cmd(shown):
        return [RUNNER, *shlex.split(cmd_of(shown))[1:]]

    # Install: `queue-job-runner migrate --database NAME` (libpq's PG* variables)
    out = _run([a.replace("NAME", db.name) for a in cmd("queue-job-runner migrate --database NAME")],
               pg_env)
    assert f"{db.name}: queue_job_skiplocked schema is up to date" in out
    trigger_sql = literal_block("The stock trigger, gone with the flag on (0) and back with it off (1)")
    assert db.scalar(trigger_sql) == 1  # flag off: stock
    status_cmd = [a.replace("odoo.conf", str(odoo_conf)) for a in cmd("queue-job-runner status -c odoo.conf")]
    table = _run(status_cmd)  # the install's check, as the guide words it
    assert "live runners: none" in table and "stock queue_job_notify trigger present" in table
    with db.conn.cursor() as cr:  # what the addon's update does with the flag on
        assert schema.apply_flag(cr, True) == "dropped"
    assert db.scalar(trigger_sql) == 0

    # Four runners: the systemd unit's, the Kubernetes container's, a plain
    # one, one with a capacity of its own (the guide's sizing)
    unit = SYSTEMD_UNIT.read_text()
    [exec_start] = re.findall(r"^ExecStart=(.*)$", unit, re.MULTILINE)
    stop_timeout = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.MULTILINE).group(1))
    assert stop_timeout > config.Config.grace  # SIGTERM's wait fits in the unit's
    systemd_port, k8s_port = free_port(), free_port()
    systemd_argv = [a.replace("/etc/odoo/odoo.conf", str(odoo_conf)).replace("9187", str(systemd_port))
                    for a in shlex.split(exec_start)[1:]]
    k8s = _k8s()
    assert k8s["grace"] > config.Config.grace and k8s["probe"] == "/healthz"
    assert k8s["command"][k8s["command"].index("--metrics-port") + 1] == str(k8s["port"])
    k8s_argv = [a.replace("/etc/odoo/odoo.conf", str(odoo_conf)).replace(str(k8s["port"]), str(k8s_port))
                .replace("0.0.0.0", "127.0.0.1") for a in k8s["command"][1:]]
    k8s_env = dict(k8s["env"], ODOO_QUEUE_JOB_HOST="127.0.0.1")  # the Odoo Service, here
    plain_argv = [a.replace("odoo.conf", str(odoo_conf)) for a in cmd("queue-job-runner run -c odoo.conf")[1:]]
    runners = {
        "systemd": Proc(systemd_argv, executable=RUNNER),
        "k8s": Proc(k8s_argv, env=k8s_env, executable=RUNNER),
        "plain": Proc(plain_argv, executable=RUNNER),
        "sized": Proc([a.replace("odoo.conf", str(odoo_conf)) for a in cmd(
            "queue-job-runner -c odoo.conf --channels root:1,root.export:1:sequential")[1:]],
            executable=RUNNER),
    }
    procs.extend(runners.values())
    wait_until(lambda: registered_runners(db) == 4, timeout=60, message="four runners")
    for port in (systemd_port, k8s_port):  # the readiness probe
        wait_until(lambda: http_get(port, "/healthz")[0] == 200, message=f"/healthz on {port}")

    ids = db.insert_jobs(300)
    wait_until(lambda: db.states() == {"done": 300}, timeout=120, message="300 jobs done")
    assert db.scalar("SELECT count(DISTINCT job_id) FROM jobrunner_execution") == 300
    assert db.execute("SELECT job_id FROM jobrunner_execution GROUP BY 1 HAVING count(*) > 1") == []
    assert db.scalar("SELECT count(DISTINCT claimed_by) FROM queue_job WHERE id = ANY(%s)", (ids,)) >= 2

    # Verify: status (table, --json), the SQL checks, /metrics
    table = _run(status_cmd)
    assert f"database {db.name}: 0 running / capacity 13 (4 live runner(s))" in table
    assert re.search(r"^root +0 +0 +0 +0 +300 +0 +0 +- +-$", table, re.MULTILINE), table
    [report] = json.loads(_run(status_cmd + ["--json"]))
    assert len(report["runners"]) == 4 and report["capacity"] == 13
    assert {c["channel"]: c["states"] for c in report["channels"]} == {"root": {"done": 300}}
    assert report["limits"] == {"root.export": "sequential"}  # from the guide's channels
    assert db.execute(literal_block("SQL checks, on any node (``psql -d DB``). Jobs by state")) == \
        [("done", 300)]
    alive_sql = literal_block("back to ``pending``)")
    assert [row[-1] for row in db.execute(alive_sql)] == [True] * 4
    by_runner = db.execute(literal_block("when the stock runner runs it)"))
    assert sum(n for _runner, n in by_runner) == 300 and len(by_runner) >= 2
    assert {r for r, _n in by_runner} <= {r[0] for r in db.execute(alive_sql)}
    assert "stock queue_job_notify trigger present" not in table
    status, metrics = http_get(systemd_port, "/metrics")
    done = sum(float(line.split()[-1]) for line in metrics.splitlines()
               if line.startswith("queue_job_runner_done_total"))
    assert status == 200 and 0 < done <= 300
    # the Kubernetes runner logs JSON, as its environment says
    assert all(json.loads(line)["event"] for line in runners["k8s"].output().splitlines())

    # A node dies: the SQL check shows it dead until recovery drops its row
    plain_id = db.scalar("SELECT id FROM queue_job_runner WHERE pid = %s", (runners["plain"].pid,))
    runners["plain"].kill()
    wait_until(lambda: (plain_id, True) not in [(r[0], r[-1]) for r in db.execute(alive_sql)],
               message="the killed runner to show dead or gone")
    wait_until(lambda: registered_runners(db) == 3, timeout=30, message="recovery to drop its row")

    # Roll back: SIGTERM (within the unit's stop timeout), flag off
    for name in ("systemd", "k8s", "sized"):
        assert runners[name].terminate(timeout=stop_timeout) == 0
    with db.conn.cursor() as cr:
        assert schema.apply_flag(cr, False) == "restored"
    assert db.scalar(trigger_sql) == 1
    assert registered_runners(db) == 0


def test_the_guide_removal_check(stock_db):
    """Remove completely: the guide's check reads (1, 0, 0) once the addon's
    uninstall and Odoo's own drops are done, and not before."""
    check = literal_block("Check (1, then 0 and 0)")
    stock_db.migrate()
    with stock_db.conn.cursor() as cr:
        schema.apply_flag(cr, True)
    assert stock_db.execute(check) != [(1, 0, 0)]
    stock_db.uninstall_addon()
    assert stock_db.execute(check) == [(1, 0, 0)]


# what Odoo's own requirements bring (17.0 to 19.0): --no-deps relies on them
ODOO_HAS = {"psycopg2-binary", "werkzeug", "gevent"}


def test_the_guide_install_commands_name_what_odoo_lacks():
    """`--no-deps` installs none of our requirements: every one Odoo's venv
    lacks must be in the command (a real Odoo 17 venv failed to load the
    addon on `No module named 'cronsim'`). The venv below sees this
    machine's packages, so it cannot tell."""
    requires = re.search(r"install_requires=\[([^\]]*)\]", (ROOT / "setup.py").read_text())
    lacking = [r for r in re.findall(r'"([^"]+)"', requires.group(1))
               if re.split(r"[<>=!~ ]", r)[0].lower() not in ODOO_HAS]
    assert "cronsim>=2.6" in lacking
    commands = [c for c in EXERCISED if "--no-deps" in c]
    assert len(commands) == 2
    for command in commands:
        assert set(lacking) <= set(shlex.split(command)), (command, lacking)


def test_the_guide_install_commands(stock_db, pg_cluster, tmp_path):
    """Prerequisites' pip commands, run as shown into a virtualenv standing
    in for Odoo's (it sees this machine's psycopg2/gevent/werkzeug as Odoo's
    venv has its own): what they install works from the installed copy."""
    if stock_db.version != "17":
        pytest.skip("packaging does not depend on the schema series: once is enough")
    # a checkout of its own: the builds write build/ and *.egg-info into it
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(
        ".git", "build", "*.egg-info", "__pycache__", ".pytest_cache", "benchmarks"))
    # made elsewhere, then moved (the user report): its bin/pip starts a Python that is gone
    made, venv = tmp_path / "venv-made", tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(made)], check=True,
                   timeout=120)
    shutil.copytree(made, venv, symlinks=True)
    shutil.rmtree(made)
    python, runner = str(venv / "bin" / "python"), str(venv / "bin" / "queue-job-runner")
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    assert site.is_relative_to(venv) and (venv / "bin" / "pip").read_text().startswith(f"#!{made}")
    env = {"PGHOST": pg_cluster.host, "PGPORT": str(pg_cluster.port), "PGUSER": pg_cluster.user,
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONPATH": ""}

    def shown(command):
        argv = [a.replace("/path/to/checkout", str(checkout)) for a in shlex.split(cmd_of(command))]
        assert argv[0].endswith("/bin/python") and argv[1:3] == ["-m", "pip"], command
        argv[0] = python  # /path/to/odoo/venv/bin/python, or /path/to/venv/bin/python
        res = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                             env=dict(os.environ, **env))
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout

    def installed_copy_works():
        # from tmp_path: this checkout is not on sys.path, only what pip installed
        out = subprocess.run([runner, "migrate", "--database", stock_db.name], capture_output=True,
                             text=True, timeout=120, cwd=tmp_path, env=dict(os.environ, **env))
        assert out.returncode == 0, out.stderr
        assert f"{stock_db.name}: queue_job_skiplocked schema is up to date" in out.stdout

    shown(ODOO_PIP + " install --no-deps /path/to/checkout 'cronsim>=2.6'")
    version = subprocess.run([runner, *shlex.split(cmd_of("queue-job-runner --version"))[1:]],
                             capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == jobrunner.__version__
    addon = site / "odoo" / "addons" / "queue_job_skiplocked"
    assert (addon / "__manifest__.py").exists()  # where Odoo finds pip-installed addons
    assert {p.name for p in (site / "jobrunner" / "sql").glob("*.sql")} == \
        {p.name for p in (checkout / "jobrunner" / "sql").glob("*.sql")}
    installed_copy_works()
    shown(ODOO_PIP + " uninstall -y queue-job-skiplocked")
    assert not os.path.exists(runner) and not addon.exists()

    shown(ODOO_PIP + " install --no-deps -e /path/to/checkout 'cronsim>=2.6'")  # a source deployment
    installed_copy_works()
    shown(ODOO_PIP + " uninstall -y queue-job-skiplocked")
    shown("/path/to/venv/bin/python -m pip install /path/to/checkout")  # a runner host: dependencies already there
    installed_copy_works()


@pytest.mark.parametrize("name", ["README.rst", "migration_guide/README.rst",
                                  "migration_guide/troubleshooting.rst", "migration_guide/bad_input.rst"])
def test_guide_links_resolve(name):
    """Files and folders the guide and the README point to exist."""
    path = ROOT / name
    for target in re.findall(r"<([\w./-]+)>`_", path.read_text()):
        assert (path.parent / target).exists(), target


def test_the_guide_stop_command(tmp_path):
    """Turn the flag on, 1.: the server's oldest process gets SIGTERM, however
    it was started; nothing found says so (no kill usage). pgrep is a stand-in
    here: a real one could find another test's Odoo."""
    [stop] = {c for c in re.findall(r"``([^`]+)``", _text().replace("\n   ", " "))
              if c.startswith("pid=$(pgrep")}
    [pattern] = re.findall(r"pgrep -o -f '([^']+)'", stop)
    for started in ("odoo-bin -c odoo.conf", "/opt/odoo/odoo-bin --config=/etc/odoo/odoo.conf",
                    "python3 ./odoo-bin -c /srv/odoo.conf --workers 4"):
        assert re.search(pattern, started), started
    assert not re.search(pattern, f"bash -c {stop}")  # the shell running it is not Odoo
    server = subprocess.Popen(["sleep", "60"])
    fake = tmp_path / "pgrep"
    fake.write_text(f"#!/bin/sh\n[ \"$*\" = \"-o -f {pattern}\" ] || exit 3\n"
                    "[ -n \"$FOUND\" ] && echo \"$FOUND\"\n")
    fake.chmod(0o755)
    path = f"{tmp_path}:{os.environ['PATH']}"
    try:
        res = subprocess.run(["bash", "-c", stop], capture_output=True, text=True, timeout=30,
                             env=dict(os.environ, PATH=path, FOUND=str(server.pid)))
        assert res.returncode == 0 and res.stderr == "", res.stderr
        assert server.wait(timeout=10) == -15  # SIGTERM
    finally:
        server.kill()
    res = subprocess.run(["bash", "-c", stop], capture_output=True, text=True, timeout=30,
                         env=dict(os.environ, PATH=path, FOUND=""))
    assert res.stderr == "no Odoo server process found\n" and "usage" not in res.stdout + res.stderr
