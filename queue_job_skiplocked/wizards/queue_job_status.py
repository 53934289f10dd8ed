# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import os

from odoo import Command, api, fields, models

from jobrunner import config as core_config, limits, status
from jobrunner.errors import ConfigError

from .. import flag


def _string_limits():
    """Cross-runner limits of this server's channels string, as
    `queue-job-runner status -c odoo.conf` reads them."""
    try:
        cfg = core_config.resolve({}, os.environ, flag.queue_job_config(), {})
    except ConfigError:  # the embedded runner says why; show the database's limits
        return {}
    return limits.from_tree(cfg.channel_tree)


class QueueJobStatus(models.TransientModel):
    """One snapshot of `queue-job-runner status` for this database, made by
    jobrunner.status.collect on the request's cursor: the same numbers."""

    _name = "queue.job.status"
    _description = "Job Queue Channel Overview (SKIP LOCKED)"
    _rec_name = "database"

    database = fields.Char(readonly=True)
    running = fields.Integer(readonly=True, help="Jobs enqueued or started")
    capacity = fields.Integer(readonly=True, help="The live runners' root capacities")
    live_runners = fields.Integer(readonly=True)
    dead_runners = fields.Integer(readonly=True, help="Registered, lock free: wait for recovery")
    report = fields.Text(readonly=True, help="queue-job-runner status, as printed")
    channel_ids = fields.One2many("queue.job.status.channel", "status_id", readonly=True)

    @api.model
    def action_open(self):
        """A fresh snapshot, in its form."""
        dbname = self.env.cr.dbname
        report = status.collect(self.env.cr, dbname, _string_limits())
        snapshot = self.create({
            "database": dbname,
            "running": report["running"],
            "capacity": report["capacity"],
            "live_runners": len(report["runners"]),
            "dead_runners": len(report["dead_runners"]),
            "report": status.render(report),
            "channel_ids": [Command.create({
                "channel": ch["channel"],
                **{state: ch["states"].get(state, 0) for state in status.STATES},
                "running": ch["running"],
                "oldest_pending_s": ch["oldest_pending_s"] or 0.0,
                "oldest_pending": status.age(ch["oldest_pending_s"]),
                "global_limit": ch["global_limit"],
            }) for ch in report["channels"]],
        })
        return {
            "type": "ir.actions.act_window",
            "name": self._description,
            "res_model": self._name,
            "res_id": snapshot.id,
            "view_mode": "form",
            "target": "current",
        }


class QueueJobStatusChannel(models.TransientModel):
    _name = "queue.job.status.channel"
    _description = "Job Queue Channel Overview Line (SKIP LOCKED)"
    _rec_name = "channel"
    _order = "channel"

    status_id = fields.Many2one("queue.job.status", required=True, ondelete="cascade")
    channel = fields.Char(readonly=True)
    wait_dependencies = fields.Integer(readonly=True)
    pending = fields.Integer(readonly=True)
    enqueued = fields.Integer(readonly=True)
    started = fields.Integer(readonly=True)
    done = fields.Integer(readonly=True)
    failed = fields.Integer(readonly=True)
    cancelled = fields.Integer(readonly=True)
    running = fields.Integer(readonly=True, help="Enqueued or started")
    oldest_pending_s = fields.Float(readonly=True, string="Oldest pending (s)")
    oldest_pending = fields.Char(readonly=True, string="Oldest pending")
    global_limit = fields.Char(readonly=True, help="Limits enforced across all runners")

    def action_open_jobs(self):
        """This channel's pending and running jobs (NULL/'' channel: root)."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("queue_job.action_queue_job")
        names = [self.channel] + ([False, ""] if self.channel == "root" else [])
        action["domain"] = [("channel", "in", names),
                            ("state", "in", ("pending", "enqueued", "started"))]
        action["context"] = {}
        return action
