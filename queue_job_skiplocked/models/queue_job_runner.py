# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models


class QueueJobRunner(models.Model):
    """Live queue_job_skiplocked runners. Rows are written by the runners
    themselves (jobrunner/sql/registry.sql), never through the ORM; a row
    whose runner died is removed by the next recovery pass."""

    _name = "queue.job.runner"
    _description = "Queue Job Runner (SKIP LOCKED)"
    _log_access = False
    _order = "id"

    host = fields.Char(readonly=True)
    pid = fields.Integer(readonly=True)
    started_at = fields.Datetime(readonly=True)
    version = fields.Char(readonly=True)
    channels = fields.Char(readonly=True)
    executor = fields.Char(readonly=True, help="host:port the runner sends runjob to")
    executor_workers = fields.Integer(readonly=True, help="that Odoo's HTTP workers, if known")
