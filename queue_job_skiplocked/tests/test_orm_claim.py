# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import SUPERUSER_ID, api
from odoo.tests import common

CHANNEL = "root.qjsl_orm_claim"


class TestOrmClaim(common.TransactionCase):
    """skiplocked_claim works on committed jobs (its own connection), so this
    test commits in cursors of its own and cleans up after itself."""

    def setUp(self):
        super().setUp()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            for priority in (20, 5, 10):
                env["res.partner"].with_delay(channel=CHANNEL, priority=priority).read(["name"])
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM queue_job WHERE channel = %s", (CHANNEL,))

    def test_claim_returns_records_in_oca_order(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            jobs = env["queue.job"].skiplocked_claim(2, [CHANNEL])
            self.assertEqual(jobs.mapped("priority"), [5, 10])
            self.assertEqual(set(jobs.mapped("state")), {"enqueued"})
            self.assertTrue(all(jobs.mapped("claim_token")))
            rest = env["queue.job"].skiplocked_claim(5, [CHANNEL])
            self.assertEqual(rest.mapped("priority"), [20])
            self.assertFalse(env["queue.job"].skiplocked_claim(5, [CHANNEL]))
