"""A throwaway PostgreSQL cluster for the demo, the tests and the benchmarks.

PostgreSQL refuses to run as root, so when we are root the cluster is
created and run as the unprivileged `postgres` system user. It listens on
127.0.0.1 and a private Unix socket directory only.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

from ..errors import ConfigError

INSTALL_HINT = (
    "PostgreSQL server binaries not found (initdb/pg_ctl); "
    "install them with: apt-get install -y postgresql"
)

# Settings for a disposable cluster; durability is not the point here.
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
BASE_SETTINGS = {
    "max_connections": "300",
    "shared_buffers": "256MB",
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
    "log_min_messages": "warning",
    "max_locks_per_transaction": "256",
}


def find_bindir():
    """Directory holding initdb and pg_ctl, newest version first."""
    env = os.environ.get("PG_BINDIR")
    candidates = [env] if env else []
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
        reverse=True,
    )
    which = shutil.which("initdb")
    if which:
        candidates.append(os.path.dirname(os.path.realpath(which)))
    for d in candidates:
        if d and os.path.exists(os.path.join(d, "initdb")) and os.path.exists(
            os.path.join(d, "pg_ctl")
        ):
            return d
    raise ConfigError(INSTALL_HINT)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """initdb + pg_ctl start/stop/restart of a private cluster."""

    def __init__(self, settings=None, fast=True, port=None, user="postgres"):
        self.bindir = find_bindir()
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.user = user  # database superuser name
        self.settings = dict(BASE_SETTINGS)
        if fast:
            self.settings.update(FAST_SETTINGS)
        self.settings.update(settings or {})
        self.basedir = None
        self._run_as = None

    # -- process helpers -------------------------------------------------
    def _cmd(self, *args, check=True, **kw):
        kwargs = {}
        if self._run_as is not None:
            kwargs.update(user=self._run_as.pw_uid, group=self._run_as.pw_gid,
                          extra_groups=[])
        return subprocess.run(
            [os.path.join(self.bindir, args[0]), *args[1:]],
            check=check, capture_output=True, text=True, cwd=self.basedir,
            **kwargs, **kw,
        )

    @property
    def datadir(self):
        return os.path.join(self.basedir, "data")

    @property
    def sockdir(self):
        return os.path.join(self.basedir, "sock")

    def dsn(self, dbname="postgres"):
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def conninfo(self, dbname="postgres"):
        return {"host": self.host, "port": self.port, "user": self.user, "dbname": dbname}

    # -- lifecycle -------------------------------------------------------
    def start(self):
        self.basedir = tempfile.mkdtemp(prefix="qjsl-pg-")
        os.makedirs(self.sockdir)
        if os.geteuid() == 0:
            try:
                self._run_as = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise ConfigError(
                    "running as root needs the unprivileged 'postgres' user to run "
                    "PostgreSQL; install it with: apt-get install -y postgresql"
                ) from exc
            for path in (self.basedir, self.sockdir):
                os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)
        self._cmd("initdb", "-D", self.datadir, "-U", self.user, "-A", "trust",
                  "-E", "UTF8", "--locale=C")
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            f.write("\nlisten_addresses = '127.0.0.1'\n")
            f.write(f"port = {self.port}\n")
            f.write(f"unix_socket_directories = '{self.sockdir}'\n")
            for key, value in self.settings.items():
                f.write(f"{key} = '{value}'\n")
        self._pg_ctl_start()
        return self

    def _pg_ctl_start(self):
        res = self._cmd("pg_ctl", "-D", self.datadir, "-w", "-t", "60",
                        "-l", os.path.join(self.basedir, "server.log"), "start",
                        check=False)
        if res.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start: {res.stdout}{res.stderr}"
                               f"{self.server_log()}")

    def server_log(self):
        try:
            with open(os.path.join(self.basedir, "server.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self, mode="fast"):
        self._cmd("pg_ctl", "-D", self.datadir, "-w", "-m", mode, "stop", check=False)

    def restart(self, mode="fast"):
        """Stop and start again on the same port and data (for fault tests)."""
        self.stop(mode)
        self._pg_ctl_start()

    def kill(self):
        """Immediate shutdown, as after a crash."""
        self.stop("immediate")

    def destroy(self):
        if self.basedir:
            self.stop("immediate")
            shutil.rmtree(self.basedir, ignore_errors=True)
            self.basedir = None

    def createdb(self, dbname, template=None):
        import psycopg2

        conn = psycopg2.connect(**self.conninfo())
        conn.autocommit = True
        try:
            with conn.cursor() as cr:
                q = f'CREATE DATABASE "{dbname}"'
                if template:
                    q += f' TEMPLATE "{template}"'
                cr.execute(q)
        finally:
            conn.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.destroy()
