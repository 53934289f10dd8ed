"""Every runner setting, declared once. argparse (cli.py), resolution with
OCA's precedence and validation (config.py), the embedded runner's child
environment and the docs checks are all derived from SETTINGS.

Precedence, highest first: the CLI flag, the ODOO_QUEUE_JOB_* variable, the
``[queue_job]`` key of the odoo.conf given with -c, then an Odoo
``[options]`` key where OCA falls back to one (``db_*``, ``http_interface``,
``http_port``), then the default (for the database: libpq's PG* variables).
"""

from dataclasses import dataclass

from .logs import FORMATS as LOG_FORMATS, LEVELS as LOG_LEVELS

ENV_PREFIX = "ODOO_QUEUE_JOB_"


@dataclass(frozen=True)
class Setting:
    name: str  # Config attribute (db_* settings: a key of Config.db)
    kind: type  # str, int or float
    default: object
    help: str
    command: str = "run"  # "run", "common" (run, migrate, status), or "odoo" (read by the
    # addon in every Odoo process: ODOO_QUEUE_JOB_* and [queue_job] only, no flag)
    minimum: object = None  # a number, or the name of a setting it may not be below
    maximum: object = None
    choices: tuple = ()
    choices_text: str | None = None  # the error's "use ..." (default: one of the choices)
    env: str | None = None  # ODOO_QUEUE_JOB_ suffix (default: NAME)
    key: str | None = None  # [queue_job] key (default: name)
    option: str | None = None  # Odoo [options] fallback
    secret: bool = False
    libpq: bool = False  # a connection parameter: Config.db[name without db_]

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")

    @property
    def env_var(self):
        return ENV_PREFIX + (self.env or self.name.upper())

    @property
    def conf_key(self):
        return self.key or self.name

    @property
    def in_db(self):
        return self.libpq


def _db(part, kind=str, secret=False, minimum=None, maximum=None):
    return Setting(f"db_{part}", kind, None, f"PostgreSQL {part} (default: libpq's PG{part.upper()})",
                   command="common", env=f"JOBRUNNER_DB_{part.upper()}", key=f"jobrunner_db_{part}",
                   option=f"db_{part}", secret=secret, minimum=minimum, maximum=maximum, libpq=True)


SETTINGS = (
    Setting("channels", str, "root:1",
            "OCA channels, e.g. root:4,root.sub:2 (node capacity; :sequential, :throttle=N, "
            ":global hold across runners; :isolated counts against itself only, not root)"),
    Setting("max_capacity", int, None,
            "without --channels: jobs this runner runs at once across its databases "
            "(queue_job 18.0's; default 1, 0: none)", minimum=0),
    Setting("db_max_capacity", str, None,
            "without --channels: jobs at once per database, N or first-match fnmatch rules "
            "like prod_*:20,*:5 (queue_job 18.0's; default: max_capacity)"),
    Setting("scheme", str, "http", "http or https, for /queue_job/runjob",
            choices=("http", "https"), choices_text="use http or https"),
    Setting("host", str, "localhost", "Odoo host for /queue_job/runjob", option="http_interface"),
    Setting("port", int, 8069, "Odoo port for /queue_job/runjob", minimum=1, maximum=65535,
            option="http_port"),
    # known only to whoever configures Odoo: runners cannot see it in PostgreSQL
    Setting("executor_workers", int, None,
            "the HTTP workers of the Odoo serving runjob at --host/--port; status warns when "
            "the runners' total capacity exceeds it (embedded runner: Odoo's workers)", minimum=1),
    Setting("channel_executors", str, None,
            "channels sent to another Odoo: root.long=http://[user:password@]host:port[,...] "
            "(each in --channels; the others go to --host/--port)", secret=True),
    Setting("http_auth_user", str, None, "HTTP basic auth user for /queue_job/runjob"),
    Setting("http_auth_password", str, None, "HTTP basic auth password", secret=True),
    Setting("wakeup", str, "notify", "notify (LISTEN for hints, default) or poll (never LISTEN)",
            choices=("notify", "poll")),
    Setting("poll_min", float, 0.05, "idle backoff floor, seconds (0.05)", minimum=0.001),
    Setting("poll_max", float, 5.0, "idle backoff cap, seconds (5)", minimum="poll_min"),
    Setting("grace", float, 30.0, "seconds to wait for jobs in flight at stop (30)", minimum=0),
    # a dead runner is seen within 8 s; an idle runner's cost is 1/8 query per second
    Setting("recovery_interval", float, 8.0, "seconds between dead-runner/dead-job checks (8)",
            minimum=0.1),
    # a NOTIFY from the addon applies edits at once; this bounds the delay
    # in poll mode and for edits made outside Odoo (1/60 query per second)
    Setting("periodic_refresh", float, 60.0,
            "seconds between re-reads of the periodic job definitions (60)", minimum=1),
    Setting("http_timeout", float, None,
            "seconds before a runjob request is abandoned (default: none)", minimum=0.1),
    Setting("db_timeout", float, 20.0,
            "seconds without answer from PostgreSQL before the connection is dropped and made "
            "again (20)", minimum=1),
    Setting("metrics_port", int, None,
            "serve /metrics (Prometheus) and /healthz on this port (off by default)",
            minimum=1, maximum=65535),
    Setting("metrics_host", str, "127.0.0.1",
            "address for --metrics-port (127.0.0.1; 0.0.0.0 for a Kubernetes probe)"),
    _db("host"),
    _db("port", int, minimum=1, maximum=65535),
    _db("user"),
    _db("password", secret=True),
    Setting("log_level", str, "INFO", "DEBUG, INFO (default), WARNING, ERROR", command="common",
            choices=LOG_LEVELS),
    Setting("log_format", str, "text",
            "text (default) or json: one object per line, with event, db, runner, uuid",
            command="common", choices=LOG_FORMATS),
    Setting("log_file", str, None,
            "append log lines to this file instead of stderr (reopened after logrotate)",
            command="common"),
    # 50 ms: a host whose processes commit jobs without pause sends at most
    # ~20 hints/s per database, whatever its number of processes (HostGate),
    # while a job arriving after a quiet window is hinted at once; a job
    # that arrives within the window waits at most that for its hint, and
    # a runner that just claimed polls again within poll_min anyway
    Setting("hint_window", float, 0.05,
            "seconds: after a hint sent at once, the hints of the next commits of the host's "
            "processes within this window coalesce into one sent at its end (0.05; 0: one per "
            "commit)", command="odoo", minimum=0, maximum=5),
)
BY_NAME = {s.name: s for s in SETTINGS}


def for_command(command):
    """The settings a subcommand takes ("run" takes the common ones too)."""
    return [s for s in SETTINGS if s.command == "common" or s.command == command]
