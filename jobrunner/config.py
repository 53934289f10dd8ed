"""Runner configuration, with OCA queue_job's names and precedence.

Precedence, highest first: CLI flags, ODOO_QUEUE_JOB_* environment variables,
the odoo.conf given with -c ([queue_job] keys, then [options] db_*/http_*),
then libpq's own PG* defaults (left to libpq: we pass nothing).
"""

import configparser
import os
from dataclasses import dataclass, field

from .channels import parse_channels
from .errors import ConfigError
from .logs import FORMATS as LOG_FORMATS, LEVELS as LOG_LEVELS

WAKEUP_MODES = ("notify", "poll")


@dataclass
class Config:
    channels: str = "root:1"
    scheme: str = "http"
    host: str = "localhost"
    port: int = 8069
    http_auth_user: str | None = None
    http_auth_password: str | None = None
    db: dict = field(default_factory=dict)  # host/port/user/password for libpq
    databases: list = field(default_factory=list)  # empty = discover
    wakeup: str = "notify"
    poll_min: float = 0.05
    poll_max: float = 5.0
    grace: float = 30.0
    recovery_interval: float = 8.0  # a dead runner is seen within 8 s; idle cost 1/8 q/s
    http_timeout: float | None = None  # None: wait for the job to finish
    db_timeout: float = 20.0  # a database round trip without answer: connection lost
    metrics_port: int | None = None  # /metrics and /healthz, off unless given
    metrics_host: str = "127.0.0.1"
    log_level: str = "INFO"
    log_format: str = "text"  # or json: one object per line
    log_file: str | None = None  # None: stderr
    channel_tree: object = None
    sources: dict = field(default_factory=dict)  # attribute -> where its value came from

    def __repr__(self):  # never print secrets
        return f"Config(channels={self.channels!r}, wakeup={self.wakeup!r}, databases={self.databases!r})"


# (attribute, env suffix, [queue_job] key)
_QUEUE_JOB_KEYS = [
    ("channels", "CHANNELS", "channels"),
    ("scheme", "SCHEME", "scheme"),
    ("host", "HOST", "host"),
    ("port", "PORT", "port"),
    ("http_auth_user", "HTTP_AUTH_USER", "http_auth_user"),
    ("http_auth_password", "HTTP_AUTH_PASSWORD", "http_auth_password"),
    ("wakeup", "WAKEUP", "wakeup"),
    ("poll_min", "POLL_MIN", "poll_min"),
    ("poll_max", "POLL_MAX", "poll_max"),
    ("grace", "GRACE", "grace"),
    ("recovery_interval", "RECOVERY_INTERVAL", "recovery_interval"),
    ("http_timeout", "HTTP_TIMEOUT", "http_timeout"),
    ("db_timeout", "DB_TIMEOUT", "db_timeout"),
    ("metrics_port", "METRICS_PORT", "metrics_port"),
    ("metrics_host", "METRICS_HOST", "metrics_host"),
    ("log_level", "LOG_LEVEL", "log_level"),
    ("log_format", "LOG_FORMAT", "log_format"),
    ("log_file", "LOG_FILE", "log_file"),
]
_DB_KEYS = ["host", "port", "user", "password"]


def read_odoo_conf(path):
    """Return ({queue_job key: value}, {options key: value}) of an odoo.conf."""
    parser = configparser.RawConfigParser()
    try:
        with open(path) as f:
            parser.read_file(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path!r}: {exc.strerror}; fix the -c path") from exc
    except configparser.Error as exc:
        raise ConfigError(f"config file {path!r} is not valid ini ({exc.message.splitlines()[0]}); "
                          "fix the file or the -c path") from exc

    def section(name):
        if not parser.has_section(name):
            return {}
        # Odoo writes unset options as "False"
        return {k: v for k, v in parser.items(name) if v not in ("", "False", "None")}

    return section("queue_job"), section("options")


def _number(cfg, attr, value, kind=float, minimum=None, maximum=None):
    where = _where(cfg, attr)
    try:
        number = kind(value)
    except (TypeError, ValueError) as exc:
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"invalid {where} value {value!r}: expected {what}") from exc
    if minimum is not None and number < minimum:
        raise ConfigError(f"invalid {where} value {value!r}: must be >= {minimum:g}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"invalid {where} value {value!r}: must be <= {maximum:g}")
    return number


def _where(cfg, attr):
    """The setting as the user wrote it: '--poll-max', 'ODOO_QUEUE_JOB_PORT'..."""
    return cfg.sources.get(attr, attr)


def build(args=None, environ=None):
    """Config from an argparse namespace (unset flags are None), env and odoo.conf."""
    environ = os.environ if environ is None else environ
    args_d = vars(args) if args is not None else {}
    qj_conf, options = ({}, {})
    if args_d.get("config") or environ.get("ODOO_RC"):
        qj_conf, options = read_odoo_conf(args_d.get("config") or environ["ODOO_RC"])
    return resolve(args_d, environ, qj_conf, options)


def resolve(args_d, environ, qj_conf, options):
    """Apply the precedence to already-read sources: CLI flags (args_d),
    environment, [queue_job] keys (qj_conf) and Odoo [options]. The Odoo
    addon calls this with Odoo's own parsed configuration."""
    cfg = Config()
    # OCA defaults for host/port come from Odoo's own http options
    if options.get("http_interface"):
        cfg.host = options["http_interface"]
    if options.get("http_port"):
        cfg.port = options["http_port"]
    for attr, env_suffix, conf_key in _QUEUE_JOB_KEYS:
        for value, source in ((args_d.get(attr), "--" + attr.replace("_", "-")),
                              (environ.get("ODOO_QUEUE_JOB_" + env_suffix),
                               "ODOO_QUEUE_JOB_" + env_suffix),
                              (qj_conf.get(conf_key), f"[queue_job] {conf_key}")):
            if value not in (None, ""):
                setattr(cfg, attr, value)
                cfg.sources[attr] = source
                break

    for key in _DB_KEYS:
        for value, source in ((args_d.get("db_" + key), "--db-" + key),
                              (environ.get("ODOO_QUEUE_JOB_JOBRUNNER_DB_" + key.upper()),
                               "ODOO_QUEUE_JOB_JOBRUNNER_DB_" + key.upper()),
                              (qj_conf.get("jobrunner_db_" + key), f"[queue_job] jobrunner_db_{key}"),
                              (options.get("db_" + key), f"[options] db_{key}")):
            if value not in (None, ""):
                cfg.db[key] = value
                cfg.sources["db_" + key] = source
                break

    if args_d.get("database"):
        cfg.databases = list(args_d["database"])
    elif options.get("db_name"):
        cfg.databases = [d.strip() for d in options["db_name"].split(",") if d.strip()]
    return validate(cfg)


def validate(cfg):
    if cfg.wakeup not in WAKEUP_MODES:
        raise ConfigError(f"invalid {_where(cfg, 'wakeup')} value {cfg.wakeup!r}: "
                          f"use one of {', '.join(WAKEUP_MODES)}")
    if str(cfg.log_level).upper() not in LOG_LEVELS:
        raise ConfigError(f"invalid {_where(cfg, 'log_level')} value {cfg.log_level!r}: "
                          f"use one of {', '.join(LOG_LEVELS)}")
    cfg.log_level = str(cfg.log_level).upper()
    if cfg.log_format not in LOG_FORMATS:
        raise ConfigError(f"invalid {_where(cfg, 'log_format')} value {cfg.log_format!r}: "
                          f"use one of {', '.join(LOG_FORMATS)}")
    if cfg.scheme not in ("http", "https"):
        raise ConfigError(f"invalid {_where(cfg, 'scheme')} value {cfg.scheme!r}: use http or https")
    cfg.port = _number(cfg, "port", cfg.port, int, 1, 65535)
    if "port" in cfg.db:
        cfg.db["port"] = _number(cfg, "db_port", cfg.db["port"], int, 1, 65535)
    cfg.poll_min = _number(cfg, "poll_min", cfg.poll_min, float, 0.001)
    cfg.poll_max = _number(cfg, "poll_max", cfg.poll_max, float, cfg.poll_min)
    cfg.grace = _number(cfg, "grace", cfg.grace, float, 0)
    cfg.recovery_interval = _number(cfg, "recovery_interval", cfg.recovery_interval, float, 0.1)
    if cfg.http_timeout is not None:
        cfg.http_timeout = _number(cfg, "http_timeout", cfg.http_timeout, float, 0.1)
    cfg.db_timeout = _number(cfg, "db_timeout", cfg.db_timeout, float, 1)
    if cfg.metrics_port is not None:
        cfg.metrics_port = _number(cfg, "metrics_port", cfg.metrics_port, int, 1, 65535)
    try:
        cfg.channel_tree = parse_channels(cfg.channels)
    except ConfigError as exc:
        where = _where(cfg, "channels")
        raise ConfigError(str(exc).replace("invalid channels value", f"invalid {where} value", 1)) from None
    return cfg


FLAG_VALUES = {"1": True, "true": True, "yes": True, "on": True,
               "0": False, "false": False, "no": False, "off": False}


def skip_locked_flag(environ, qj_conf):
    """The feature flag: ODOO_QUEUE_JOB_SKIP_LOCKED, else [queue_job] skip_locked.

    Unset means off (stock queue_job). Anything but true/false (1/0, yes/no,
    on/off) is a ConfigError naming the value."""
    for source, value in (("ODOO_QUEUE_JOB_SKIP_LOCKED", environ.get("ODOO_QUEUE_JOB_SKIP_LOCKED")),
                          ("[queue_job] skip_locked", qj_conf.get("skip_locked"))):
        if value is None or str(value).strip() == "":
            continue
        if isinstance(value, bool):
            return value
        flag = FLAG_VALUES.get(str(value).strip().lower())
        if flag is None:
            raise ConfigError(f"invalid {source} value {value!r}: use true or false")
        return flag
    return False


def runner_argv(cfg):
    """CLI flags that reproduce a resolved config in a `queue-job-runner run`
    child process (the password travels in the environment, never in argv)."""
    argv = ["run", "--channels", cfg.channels, "--scheme", cfg.scheme, "--host", cfg.host,
            "--port", str(cfg.port), "--wakeup", cfg.wakeup, "--poll-min", str(cfg.poll_min),
            "--poll-max", str(cfg.poll_max), "--grace", str(cfg.grace),
            "--recovery-interval", str(cfg.recovery_interval), "--db-timeout", str(cfg.db_timeout),
            "--log-level", cfg.log_level, "--log-format", cfg.log_format]
    if cfg.http_timeout:
        argv += ["--http-timeout", str(cfg.http_timeout)]
    if cfg.log_file:
        argv += ["--log-file", cfg.log_file]
    for key in ("host", "port", "user"):
        if cfg.db.get(key):
            argv += [f"--db-{key}", str(cfg.db[key])]
    for name in cfg.databases:
        argv += ["--database", name]
    env = {}
    if cfg.db.get("password"):
        env["ODOO_QUEUE_JOB_JOBRUNNER_DB_PASSWORD"] = cfg.db["password"]
    if cfg.http_auth_user:
        env["ODOO_QUEUE_JOB_HTTP_AUTH_USER"] = cfg.http_auth_user
        env["ODOO_QUEUE_JOB_HTTP_AUTH_PASSWORD"] = cfg.http_auth_password or ""
    return argv, env
