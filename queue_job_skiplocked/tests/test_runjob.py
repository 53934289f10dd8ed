# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from unittest import mock

from odoo.tests import common, tagged

from .. import flag


@tagged("post_install", "-at_install")
class TestRunJobToken(common.HttpCase):
    """/queue_job/runjob through Odoo's HTTP stack, on the test cursor."""

    def _enqueued(self, name, token):
        self.env["res.partner"].with_delay().create({"name": name})
        job = self.env["queue.job"].search([], order="id desc", limit=1)
        # as a runner's claim leaves it
        self.env.cr.execute(
            "UPDATE queue_job SET state = 'enqueued', claimed_by = 1, claim_token = %s "
            "WHERE id = %s",
            (token, job.id),
        )
        job.invalidate_recordset()
        return job

    def _runjob(self, job, token=None):
        url = f"/queue_job/runjob?db={self.env.cr.dbname}&job_uuid={job.uuid}"
        if token is not None:
            url += f"&token={token}"
        self.url_open(url, timeout=60)
        job.invalidate_recordset()

    def _created(self, name):
        return self.env["res.partner"].search_count([("name", "=", name)])

    def test_only_the_current_token_runs_the_job(self):
        with mock.patch.object(flag, "SKIP_LOCKED", True):
            job = self._enqueued("qjsl token", "tok-1")
            with self.assertLogs("odoo.addons.queue_job_skiplocked.controllers.main", "WARNING"):
                self._runjob(job, "stale-token")
            self.assertEqual(job.state, "enqueued")
            self.assertEqual(self._created("qjsl token"), 0)
            with self.assertLogs("odoo.addons.queue_job_skiplocked.controllers.main", "WARNING"):
                self._runjob(job)  # no token at all
            self.assertEqual(job.state, "enqueued")
            self._runjob(job, "tok-1")
            self.assertEqual(job.state, "done")
            self.assertEqual(self._created("qjsl token"), 1)
            # a replay of the very same request finds it done: nothing runs twice
            with self.assertLogs("odoo.addons.queue_job_skiplocked.controllers.main", "WARNING"):
                self._runjob(job, "tok-1")
            self.assertEqual(self._created("qjsl token"), 1)

    def test_stock_claim_without_token_runs(self):
        # enqueued by a stock runner before the flag was switched on
        with mock.patch.object(flag, "SKIP_LOCKED", True):
            job = self._enqueued("qjsl stock claim", None)
            self._runjob(job)
            self.assertEqual(job.state, "done")
            self.assertEqual(self._created("qjsl stock claim"), 1)

    def test_flag_off_is_the_stock_path(self):
        with mock.patch.object(flag, "SKIP_LOCKED", False):
            job = self._enqueued("qjsl flag off", "tok-2")
            self._runjob(job)  # stock queue_job ignores tokens
            self.assertEqual(job.state, "done")
            self.assertEqual(self._created("qjsl flag off"), 1)
