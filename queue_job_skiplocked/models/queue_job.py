# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import _, api, fields, models
from odoo.exceptions import AccessError, MissingError, UserError

from jobrunner import claim, db, logs, schema, wait

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
    # claimed_by's registry row while the runner is registered (it goes at
    # its clean stop or its recovery; claimed_by stays on the job)
    claimed_runner_id = fields.Many2one(
        "queue.job.runner", compute="_compute_claimed_runner_id", string="Claimed by runner"
    )

    @api.depends("claimed_by")
    def _compute_claimed_runner_id(self):
        registered = self.env["queue.job.runner"].sudo().browse(
            {job.claimed_by for job in self if job.claimed_by}).exists()
        for job in self:
            job.claimed_runner_id = registered.browse(job.claimed_by) & registered

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
        # no hint for a periodic job's model row: its savepoint is rolled back
        template = self.env.context.get("queue_job_skiplocked_template")
        if flag.is_on() and not template and any(r.state == "pending" for r in records):
            hints.after_commit(self.env.cr)
        return records

    def write(self, vals):
        res = super().write(vals)
        if flag.is_on() and vals.get("state") == "pending":
            hints.after_commit(self.env.cr)
        return res

    @api.model
    def wait_job(self, uuid, timeout=30.0):
        """Wait for job `uuid` to end, up to `timeout` seconds, and return
        {uuid, state, result, exc_name, exc_message, date_done}: as soon as
        it is done, failed or cancelled, else its state at the timeout.

        For application code after the enqueuing transaction committed, e.g.
        in a controller: enqueue, ``env.cr.commit()``, wait N seconds, answer
        with the result or with the uuid to poll later. The wait runs on
        connections of its own (shared by every wait of the process) and
        holds no transaction; this request's cursor is untouched. A job of
        the current, uncommitted transaction raises UserError (no one else
        can see it: the wait would never end). Only a job the user may read
        is waited for; another uuid is a MissingError, like an unknown one."""
        try:
            readable = self.search_count([("uuid", "=", uuid)])
        except AccessError:  # no access to jobs at all: the same answer as unknown
            readable = 0
        if not readable:
            # odoo._, not env._: 17.0 has no env._
            raise MissingError(_("No job %s.", uuid))  # pylint: disable=prefer-env-translation
        dbname = self.env.cr.dbname
        outcome = wait.waiters(hints.conninfo(dbname), dbname).wait(uuid, timeout)
        if outcome is None:
            raise UserError(_(  # pylint: disable=prefer-env-translation
                "Job %s is not committed yet: commit the transaction that enqueued it before "
                "waiting for it (or answer with its uuid).", uuid))
        return outcome.as_dict()

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
