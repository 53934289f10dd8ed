# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The feature flag and the addon's other settings, read once per process
from Odoo's configuration.

ODOO_QUEUE_JOB_SKIP_LOCKED, else ``[queue_job] skip_locked`` in odoo.conf;
unset means off: stock queue_job. A bad value stops Odoo at start-up with one
line naming it (this module is imported while the server loads addons)."""

import os

from jobrunner import config as core_config
from jobrunner.errors import ConfigError

from . import series


def queue_job_config():
    """The [queue_job] section as queue_job itself reads it."""
    try:
        from odoo.addons.server_environment import serv_config
    except ImportError:  # server_environment is optional, as for queue_job
        serv_config = None
    if serv_config is not None and serv_config.has_section("queue_job"):
        return dict(serv_config["queue_job"])
    return series.odoo_conf_section("queue_job")


def _read(read):
    try:
        return read(os.environ, queue_job_config())
    except ConfigError as exc:
        # SystemExit with one line: Odoo does not start on a bad value
        raise SystemExit(f"queue_job_skiplocked: {exc}") from None


SKIP_LOCKED = _read(core_config.skip_locked_flag)
# jobrunner/settings.py's "odoo" settings
HINT_WINDOW = _read(lambda environ, conf: core_config.odoo_setting("hint_window", environ, conf))


def is_on():
    return SKIP_LOCKED


def embedded_runner():
    """[queue_job] skip_locked_embedded_runner: start our runner inside Odoo
    (default) or leave it to separate queue-job-runner processes."""
    value = queue_job_config().get("skip_locked_embedded_runner", "True")
    try:
        return core_config.FLAG_VALUES[str(value).strip().lower()]
    except KeyError:
        raise SystemExit(
            f"queue_job_skiplocked: invalid [queue_job] skip_locked_embedded_runner value "
            f"{value!r}: use true or false") from None
