"""A real PgBouncer (Debian's package) in front of the test cluster, on
127.0.0.1, run as the `postgres` user when we are root (it refuses root)."""

import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

from jobrunner.testing.pgcluster import free_port

from jobrunner.testing.fixtures import wait_port


def binary():
    return shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer")
                                         else None)


class PgBouncer:
    def __init__(self, cluster, pool_mode="transaction", pool_size=4):
        exe = binary()
        if exe is None:
            if os.environ.get("CI"):
                raise RuntimeError("pgbouncer missing in CI: scripts/test.sh installs it "
                                   "(apt-get install -y pgbouncer)")
            pytest.skip("pgbouncer not installed (apt-get install -y pgbouncer)")
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user = cluster.user
        self.dir = tempfile.mkdtemp(prefix="qjsl-pgb-")
        ini = os.path.join(self.dir, "pgbouncer.ini")
        with open(os.path.join(self.dir, "users.txt"), "w") as f:
            f.write(f'"{cluster.user}" ""\n')
        with open(ini, "w") as f:
            f.write(f"""[databases]
* = host={cluster.host} port={cluster.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.dir}/users.txt
pool_mode = {pool_mode}
default_pool_size = {pool_size}
max_client_conn = 200
ignore_startup_parameters = extra_float_digits,options
logfile = {self.dir}/pgbouncer.log
pidfile = {self.dir}/pgbouncer.pid
""")
        kwargs = {}
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for path in (self.dir, ini, os.path.join(self.dir, "users.txt")):
                os.chown(path, pw.pw_uid, pw.pw_gid)
            kwargs = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        self.proc = subprocess.Popen([exe, ini], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, **kwargs)
        wait_port(self.port)

    def log(self):
        try:
            with open(os.path.join(self.dir, "pgbouncer.log")) as f:
                return f.read()
        except OSError:
            return ""

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
