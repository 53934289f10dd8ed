# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models

from jobrunner import claim, db, logs, schema

from .. import flag, hints

_log = logs.Log(__name__, inline=True)


class QueueJob(models.Model):
    _inherit = "queue.job"

    # Columns of jobrunner/sql/migrations, declared so that Odoo and the SQL
    # agree; written only by runners and the runjob controller.
    claimed_by = fields.Integer(
        readonly=True, help="queue_job_runner id of the runner that claimed the job"
    )
    claim_token = fields.Char(readonly=True, groups="base.group_system", copy=False)

    def init(self):
        res = super().init()
        # the very file `queue-job-runner migrate` applies
        schema.migrate(self.env.cr, self.env.cr.dbname)
        change = schema.apply_flag(self.env.cr, flag.is_on())
        if change:
            _log.info("trigger-changed", "queue_job_notify trigger %s (skip_locked=%s)", change,
                      flag.is_on(), db=self.env.cr.dbname)
        return res

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        if flag.is_on() and any(r.state == "pending" for r in records):
            hints.after_commit(self.env.cr)
        return records

    def write(self, vals):
        res = super().write(vals)
        if flag.is_on() and vals.get("state") == "pending":
            hints.after_commit(self.env.cr)
        return res

    @api.model
    def skiplocked_claim(self, limit, channels=("root",)):
        """Claim up to `limit` due pending jobs of `channels` (and their
        subchannels) and return them as records, moved to `enqueued` with a
        fresh fencing token.

        The claim runs on a separate autocommit connection: Odoo's cursors
        are REPEATABLE READ and must not hold the claim's row locks. The caller runs the
        jobs (e.g. through /queue_job/runjob with their claim_token); claims
        it never starts are handed back by the runners' recovery."""
        dbname = self.env.cr.dbname
        conn = db.connect(hints.conninfo(dbname), dbname, application_name="queue-job-orm-claim")
        try:
            with conn.cursor() as cr:
                jobs, _next_eta = claim.claim_channels(cr, None, limit, channels)
        finally:
            conn.close()
        return self.browse([j.id for j in jobs])
