# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError

from jobrunner import claim, status

from .. import flag, hints

MANAGER = "queue_job.group_queue_job_manager"


class QueueJobRunner(models.Model):
    """Registered queue_job_skiplocked runners. Rows are written by the
    runners themselves (jobrunner/sql/registry.sql), never through the ORM;
    a row whose runner died is removed by the next recovery pass.

    alive, in_flight and capacity come from jobrunner.status.runners, what
    `queue-job-runner status` shows: alive = the runner's advisory lock is
    held now (pg_locks), the same proof the runners' recovery relies on."""

    _name = "queue.job.runner"
    _description = "Queue Job Runner (SKIP LOCKED)"
    _log_access = False
    _order = "id"

    host = fields.Char(readonly=True)
    pid = fields.Integer(readonly=True)
    started_at = fields.Datetime(readonly=True, string="Since")
    version = fields.Char(readonly=True)
    channels = fields.Char(readonly=True)
    executor = fields.Char(readonly=True, help="host:port the runner sends runjob to")
    executor_workers = fields.Integer(readonly=True, help="that Odoo's HTTP workers, if known")
    alive = fields.Boolean(
        compute="_compute_status",
        search="_search_alive",
        help="It holds its liveness lock now. A dead runner's unstarted claims "
        "wait for the next recovery pass of a live runner (or the hand-back button).",
    )
    in_flight = fields.Integer(
        compute="_compute_status", help="Its jobs enqueued or started now"
    )
    capacity = fields.Integer(
        compute="_compute_status", help="Its root channel capacity (ODOO_QUEUE_JOB_CHANNELS)"
    )

    def _status_rows(self):
        return {r["id"]: r for r in status.runners(self.env.cr)}

    @api.depends()
    def _compute_status(self):
        rows = self._status_rows()
        for runner in self:
            row = rows.get(runner.id, {})
            runner.alive = row.get("alive", False)
            runner.in_flight = row.get("in_flight", 0)
            runner.capacity = row.get("capacity", 0)

    def _search_alive(self, operator, value):
        if operator not in ("=", "!="):
            # pylint: disable=prefer-env-translation
            raise UserError(_("Unsupported search on alive: %s", operator))
        wanted = bool(value) == (operator == "=")
        return [("id", "in", [i for i, r in self._status_rows().items() if r["alive"] == wanted])]

    @api.depends("host", "pid")
    def _compute_display_name(self):
        for runner in self:
            runner.display_name = f"#{runner.id} {runner.host or '?'} pid {runner.pid}"

    def action_hand_back(self):
        """Hand a dead runner's unstarted claims back to pending now, through
        the statement recovery runs (claim.hand_back); refused for a live one."""
        self.ensure_one()
        if not self.env.user.has_group(MANAGER):
            # pylint: disable=prefer-env-translation
            raise AccessError(_("Only job queue managers may hand claims back."))
        name = self.display_name
        handed = claim.hand_back(self.env.cr, self.id)
        if handed is None:
            raise UserError(_(  # pylint: disable=prefer-env-translation
                "Runner %s is alive (it holds its liveness lock): its claims are its own. "
                "Stop the runner to hand them back.", name))
        self.invalidate_recordset()
        if handed and flag.is_on():
            hints.after_commit(self.env.cr)  # live runners claim them at once
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": _(  # pylint: disable=prefer-env-translation
                    "%(n)s claim(s) of dead runner %(name)s handed back to pending.",
                    n=len(handed), name=name),
                "next": self.env["ir.actions.act_window"]._for_xml_id(
                    "queue_job_skiplocked.action_queue_job_runner"),
            },
        }

    def action_open_jobs(self):
        """Its jobs in flight (enqueued or started)."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("queue_job.action_queue_job")
        action["domain"] = [("claimed_by", "=", self.id), ("state", "in", ("enqueued", "started"))]
        action["context"] = {}
        return action
