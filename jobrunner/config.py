"""Runner configuration, with OCA queue_job's names and precedence: the
settings of settings.SETTINGS resolved from CLI flags, ODOO_QUEUE_JOB_*
environment variables, the odoo.conf given with -c ([queue_job] keys, then
[options] db_*/http_*), then libpq's own PG* defaults (left to libpq: we
pass nothing).
"""

import configparser
import fnmatch
from collections import namedtuple
from urllib.parse import unquote, urlsplit
import os
from dataclasses import field, make_dataclass

from .channels import parse_channels
from .plan import normalize_channel
from .errors import ConfigError
from .settings import SETTINGS, BY_NAME


def _repr(cfg):  # never print secrets
    return f"Config(channels={cfg.channels!r}, wakeup={cfg.wakeup!r}, databases={cfg.databases!r})"


Config = make_dataclass(
    "Config",
    [(s.name, object, s.default) for s in SETTINGS if not s.in_db] + [
        ("db", dict, field(default_factory=dict)),  # host/port/user/password for libpq
        ("databases", list, field(default_factory=list)),  # empty = discover
        ("channel_tree", object, None),
        ("db_caps", list, field(default_factory=list)),  # db_max_capacity: [(pattern, cap)]
        ("channel_executor_map", dict, field(default_factory=dict)),  # channel -> ExecutorSpec
        ("sources", dict, field(default_factory=dict)),  # setting -> where its value came from
    ],
    namespace={"__repr__": _repr, "__doc__": "A resolved runner configuration."},
    repr=False,
)


def get(cfg, setting):
    """The resolved value of a Setting (None: unset)."""
    return cfg.db.get(setting.name[3:]) if setting.in_db else getattr(cfg, setting.name)


def _set(cfg, setting, value):
    if setting.in_db:
        cfg.db[setting.name[3:]] = value
    else:
        setattr(cfg, setting.name, value)


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


def _number(cfg, setting, value):
    where = _where(cfg, setting.name)
    try:
        number = setting.kind(value)
    except (TypeError, ValueError) as exc:
        what = "an integer" if setting.kind is int else "a number"
        raise ConfigError(f"invalid {where} value {value!r}: expected {what}") from exc
    minimum, maximum = (getattr(cfg, b) if isinstance(b, str) else b
                        for b in (setting.minimum, setting.maximum))
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
    for setting in SETTINGS:
        for value, source in ((args_d.get(setting.name), setting.flag),
                              (environ.get(setting.env_var), setting.env_var),
                              (qj_conf.get(setting.conf_key), f"[queue_job] {setting.conf_key}"),
                              (options.get(setting.option), f"[options] {setting.option}")):
            if value not in (None, ""):
                _set(cfg, setting, value)
                cfg.sources[setting.name] = source
                break
    if args_d.get("database"):
        cfg.databases = list(args_d["database"])
    elif options.get("db_name"):
        cfg.databases = [d.strip() for d in options["db_name"].split(",") if d.strip()]
    return validate(cfg)


def validate(cfg):
    for setting in SETTINGS:
        value = get(cfg, setting)
        if value is None:
            continue
        if setting.choices:
            if setting is BY_NAME["log_level"]:
                value = str(value).upper()
            if value not in setting.choices:
                use = setting.choices_text or f"use one of {', '.join(setting.choices)}"
                raise ConfigError(f"invalid {_where(cfg, setting.name)} value {get(cfg, setting)!r}: "
                                  f"{use}")
        elif setting.kind is not str:
            value = _number(cfg, setting, value)
        _set(cfg, setting, value)
    if "channels" not in cfg.sources:
        # no channel string: queue_job 18.0's max_capacity / db_max_capacity
        if cfg.max_capacity is not None:
            cfg.channels = f"root:{cfg.max_capacity}"
        cfg.db_caps = parse_db_caps(cfg)
    try:
        cfg.channel_tree = parse_channels(cfg.channels)
    except ConfigError as exc:
        where = _where(cfg, "channels")
        raise ConfigError(str(exc).replace("invalid channels value", f"invalid {where} value", 1)) from None
    cfg.channel_executor_map = parse_channel_executors(cfg)
    return cfg


def parse_db_caps(cfg):
    """db_max_capacity as [(fnmatch pattern, capacity)], first match wins;
    a bare N is *:N."""
    text, rules = cfg.db_max_capacity, []
    for item in (text or "").replace("\n", ",").split(","):
        if not item.strip():
            continue
        pattern, sep, cap = item.strip().rpartition(":")
        if not cap.strip().isdigit() or (sep and not pattern.strip()):
            raise ConfigError(f"invalid {_where(cfg, 'db_max_capacity')} value {text!r}: expected N "
                              "or pattern:N rules separated by commas, e.g. prod_*:20,*:5")
        rules.append((pattern.strip() if sep else "*", int(cap)))
    return rules


def db_capacity(cfg, dbname):
    """This runner's cap on jobs at once in `dbname` (None: only the node's):
    db_max_capacity's first match."""
    for pattern, cap in cfg.db_caps:
        if fnmatch.fnmatchcase(dbname, pattern):
            return cap
    return None


ExecutorSpec = namedtuple("ExecutorSpec", "scheme host port user password")


def parse_channel_executors(cfg):
    """channel_executors as {full channel name: ExecutorSpec}; each channel
    must be configured in `channels` (so its jobs have a bucket of their own)."""
    text, out = cfg.channel_executors, {}
    use = ("expected CHANNEL=http(s)://[user:password@]host:port separated by commas, "
           "e.g. root.long=http://odoo-long:8069")
    for item in (text or "").replace("\n", ",").split(","):
        if not item.strip():
            continue
        channel, sep, url = (p.strip() for p in item.partition("="))
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = None
        if not (sep and channel and parts.scheme in ("http", "https") and parts.hostname and port):
            # the value may hold a password: name the item's channel, not the value
            raise ConfigError(f"invalid {_where(cfg, 'channel_executors')} item for "
                              f"{channel or '?'!r}: {use}")
        name = normalize_channel(channel)
        if name not in {ch.name for ch in cfg.channel_tree.channels}:
            raise ConfigError(f"invalid {_where(cfg, 'channel_executors')}: channel {channel!r} "
                              f"is not in channels {cfg.channels!r}; give it a capacity there "
                              f"(e.g. {name}:2:isolated)")
        out[name] = ExecutorSpec(parts.scheme, parts.hostname, port, unquote(parts.username or "")
                                 or None, unquote(parts.password or "") or None)
    return out


FLAG_VALUES = {"1": True, "true": True, "yes": True, "on": True,
               "0": False, "false": False, "no": False, "off": False}


def odoo_setting(name, environ, qj_conf):
    """A setting the addon reads in every Odoo process (command "odoo"):
    ODOO_QUEUE_JOB_*, else the [queue_job] key, else its default, validated
    as the runner validates its own."""
    setting = BY_NAME[name]
    cfg = Config()
    for value, source in ((environ.get(setting.env_var), setting.env_var),
                          (qj_conf.get(setting.conf_key), f"[queue_job] {setting.conf_key}")):
        if value not in (None, ""):
            cfg.sources[name] = source
            return _number(cfg, setting, value) if setting.kind is not str else value
    return setting.default


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


def child_command(cfg):
    """argv and environment of a `queue-job-runner run` child that resolves
    to `cfg` (the embedded runner): every setting travels as its
    ODOO_QUEUE_JOB_* variable (so secrets stay out of argv), the databases
    as --database."""
    argv = ["run"]
    for name in cfg.databases:
        argv += ["--database", name]
    # what was given, not what was derived from it (channels from max_capacity)
    env = {s.env_var: str(get(cfg, s)) for s in SETTINGS
           if s.name in cfg.sources and get(cfg, s) is not None}
    return argv, env
