# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from unittest import mock

from odoo.tests import common

from jobrunner import schema

from .. import flag, hooks


class TestSkipLocked(common.TransactionCase):
    def _job(self, **kw):
        return self.env["res.partner"].with_delay(**kw).read(["name"])

    def test_columns_declared_and_schema_applied(self):
        fields = self.env["queue.job"]._fields
        self.assertIn("claimed_by", fields)
        self.assertIn("claim_token", fields)
        self.assertTrue(schema.schema_ready(self.env.cr))
        self.env.cr.execute(
            "SELECT 1 FROM pg_indexes WHERE indexname = 'queue_job_skiplocked_pending_index'"
        )
        self.assertTrue(self.env.cr.fetchone())

    def test_trigger_follows_the_flag(self):
        present = schema.stock_trigger_present(self.env.cr)
        self.assertEqual(present, not flag.is_on())
        schema.apply_flag(self.env.cr, True)
        self.assertFalse(schema.stock_trigger_present(self.env.cr))
        schema.apply_flag(self.env.cr, False)
        self.assertTrue(schema.stock_trigger_present(self.env.cr))

    def test_hint_only_with_flag_on(self):
        with mock.patch.object(flag, "SKIP_LOCKED", True), mock.patch(
            "odoo.addons.queue_job_skiplocked.hints.after_commit"
        ) as after_commit:
            self._job()
            self.assertTrue(after_commit.called)
        with mock.patch.object(flag, "SKIP_LOCKED", False), mock.patch(
            "odoo.addons.queue_job_skiplocked.hints.after_commit"
        ) as after_commit:
            self._job()
            self.assertFalse(after_commit.called)

    def test_runner_model_reads_registry(self):
        self.env.cr.execute(
            "INSERT INTO queue_job_runner (host, pid, version, channels) "
            "VALUES ('h', 1, 'v', 'root:1') RETURNING id"
        )
        runner_id = self.env.cr.fetchone()[0]
        runner = self.env["queue.job.runner"].browse(runner_id)
        self.assertEqual((runner.host, runner.pid, runner.channels), ("h", 1, "root:1"))

    def test_uninstall_hook_puts_stock_queue_job_back(self):
        # inside the test's transaction: PostgreSQL rolls the DDL back with it
        schema.apply_flag(self.env.cr, True)
        hooks.uninstall_hook(self.env)
        self.assertTrue(schema.stock_trigger_present(self.env.cr))
        self.env.cr.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'queue_job_skiplocked_%%' "
            "AND indexname <> 'queue_job_skiplocked_enqueued_index'"
        )
        self.assertEqual(self.env.cr.fetchall(), [])  # the last one goes with its column
