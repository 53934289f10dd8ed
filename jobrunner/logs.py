"""Structured log lines.

Every line the runner writes names an event (a stable key, listed with its
fix in migration_guide/troubleshooting.rst) and carries its context as
fields: db, runner id, job uuid, channel. Two renderings of the same record:

  text  2026-11-24 10:00:01,234 4711 WARNING jobrunner.runner [job-requeued] db=prod runner=14 uuid=5b0e…: job re-queued: its runner died
  json  {"time": "2026-11-24T10:00:01.234Z", "level": "WARNING", "event": "job-requeued", "db": "prod", "runner": 14, "uuid": "5b0e…", "msg": "…", …}

Inside Odoo (the addon) lines go through Odoo's own formatter, which knows
nothing of fields: there the event and fields are written into the message.
"""

import json
import logging
import logging.handlers
import socket
import time
import warnings

from .errors import ConfigError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")
FIELDS = ("db", "runner", "uuid", "channel")  # in this order in text lines


class Log:
    """A logger bound to context fields; each call names its event:
    ``log.warning("job-requeued", "job re-queued: %s", why, uuid=uuid)``."""

    def __init__(self, name, inline=False, **fields):
        self.logger = logging.getLogger(name)
        self.inline = inline
        self.fields = fields

    def bind(self, **fields):
        log = Log.__new__(Log)
        log.logger, log.inline, log.fields = self.logger, self.inline, {**self.fields, **fields}
        return log

    def _log(self, level, event, msg, args, fields, exc_info=None):
        if not self.logger.isEnabledFor(level):
            return
        ctx = {**self.fields, **fields}
        if self.inline:  # a formatter we do not own: write the context into the line
            msg = f"[{event}] {msg}" + "".join(f" {k}={v}" for k, v in ctx.items() if v is not None)
        self.logger.log(level, msg, *args, exc_info=exc_info,
                        extra={"event": event, "ctx": ctx})

    def debug(self, event, msg, *args, **fields):
        self._log(logging.DEBUG, event, msg, args, fields)

    def info(self, event, msg, *args, **fields):
        self._log(logging.INFO, event, msg, args, fields)

    def warning(self, event, msg, *args, **fields):
        self._log(logging.WARNING, event, msg, args, fields)

    def error(self, event, msg, *args, exc_info=None, **fields):
        self._log(logging.ERROR, event, msg, args, fields, exc_info)


def _context(record):
    ctx = getattr(record, "ctx", None) or {}
    return [(k, ctx[k]) for k in FIELDS if ctx.get(k) is not None] + \
        [(k, v) for k, v in ctx.items() if k not in FIELDS and v is not None]


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(process)d %(levelname)s %(name)s%(context)s: %(message)s")

    def format(self, record):
        event = getattr(record, "event", None)
        record.context = (f" [{event}]" if event else "") + "".join(
            f" {k}={v}" for k, v in _context(record))
        return super().format(record)


class JsonFormatter(logging.Formatter):
    host = socket.gethostname()

    def format(self, record):
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            # a library's line (a Python warning, gevent) has no event of ours
            "event": getattr(record, "event", None) or "library",
            **dict(_context(record)),
            "msg": record.getMessage(),
            "host": self.host,
            "pid": record.process,
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def setup(level="INFO", fmt="text", path=None, where="--log-file"):
    """Configure the root logger of a runner process: stderr, or the file
    `path` (reopened when logrotate moves it, as Odoo's own logfile)."""
    if path:
        try:
            handler = logging.handlers.WatchedFileHandler(path)
        except OSError as exc:
            raise ConfigError(f"invalid {where} value {path!r}: {exc.strerror}; "
                              "fix the path or its permissions") from None
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # Python warnings as log lines too: JSON stays JSON
    # gevent's import of pkg_resources (setuptools >= 80): nothing an operator can act on
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
