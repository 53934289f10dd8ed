"""Errors the runner reports as one line and an exit code."""


class ConfigError(Exception):
    """Bad configuration or input: the message names the value and the fix.

    The CLI prints it as one line and exits 2.
    """


class DatabaseNotReady(ConfigError):
    """The database lacks queue_job or our schema additions."""


class ConnectionLost(Exception):
    """A runner's control connection (and with it its liveness lock) is gone."""


def first_line(exc):
    """An exception as one log line: its first line, or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
