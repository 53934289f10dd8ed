# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo.exceptions import MissingError, UserError
from odoo.tests import common, tagged


@tagged("post_install", "-at_install")
class TestWaitJob(common.TransactionCase):
    """queue.job.wait_job: for jobs whose enqueuing transaction committed.
    (A committed job cannot be made inside a test's transaction: the wait
    itself is tested against a real PostgreSQL in the core's tests.)"""

    def test_a_job_of_the_current_transaction_raises_instead_of_waiting(self):
        job = self.env["res.partner"].with_delay().create({"name": "qjsl wait"})
        with self.assertRaisesRegex(UserError, "not committed yet"):
            self.env["queue.job"].wait_job(job.uuid, timeout=30)

    def test_an_unknown_or_unreadable_job_is_missing(self):
        with self.assertRaises(MissingError):
            self.env["queue.job"].wait_job("no-such-uuid", timeout=1)
        job = self.env["res.partner"].with_delay().create({"name": "qjsl wait other"})
        with self.assertRaises(MissingError):  # a user without queue_job's access: the same
            self.env["queue.job"].with_user(self.env.ref("base.public_user")).wait_job(job.uuid, 1)
