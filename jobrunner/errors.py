"""Errors the runner reports as one line and an exit code."""


class ConfigError(Exception):
    """Bad configuration or input: the message names the value and the fix.

    The CLI prints it as one line and exits 2.
    """


class DatabaseNotReady(ConfigError):
    """The database lacks queue_job or our schema additions."""
