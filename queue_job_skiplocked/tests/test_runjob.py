# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from unittest import mock

from odoo.tests import common, tagged

from jobrunner import runjob

from .. import flag, series

OUR_LOGGER = "odoo.addons.queue_job_skiplocked.controllers.main"
STOCK_LOGGER = "odoo.addons.queue_job.controllers.main"


class RunJobCase(common.HttpCase):
    """/queue_job/runjob through Odoo's HTTP stack, on the test cursor."""

    def _enqueued(self, name, token, method="create"):
        getattr(self.env["res.partner"].with_delay(), method)({"name": name})
        job = self.env["queue.job"].search([], order="id desc", limit=1)
        # as a runner's claim leaves it
        self.env.cr.execute(
            "UPDATE queue_job SET state = 'enqueued', claimed_by = 1, claim_token = %s "
            "WHERE id = %s",
            (token, job.id),
        )
        job.invalidate_recordset()
        return job

    def _runjob(self, job, token=None, in_query=False):
        response = self._get_runjob(job.uuid, token, in_query)
        job.invalidate_recordset()
        return response

    def _get_runjob(self, uuid, token=None, in_query=False):
        url = f"/queue_job/runjob?db={self.env.cr.dbname}&job_uuid={uuid}"
        # ?db= on 17.0/18.0, the header on 19.0 (the runner sends its series' one)
        headers = {"X-Odoo-Database": self.env.cr.dbname}
        if token is not None and in_query:
            url += f"&token={token}"  # as runners before 1.0 sent it
        elif token is not None:
            headers[runjob.TOKEN_HEADER] = token  # kept out of the access log
        return self.url_open(url, timeout=60, headers=headers)

    def _created(self, name):
        return self.env["res.partner"].search_count([("name", "=", name)])


@tagged("post_install", "-at_install")
class TestRunJobToken(RunJobCase):
    def test_only_the_current_token_runs_the_job(self):
        with mock.patch.object(flag, "SKIP_LOCKED", True):
            job = self._enqueued("qjsl token", "tok-1")
            with self.assertLogs(OUR_LOGGER, "WARNING"):
                self._runjob(job, "stale-token")
            self.assertEqual(job.state, "enqueued")
            self.assertEqual(self._created("qjsl token"), 0)
            with self.assertLogs(OUR_LOGGER, "WARNING"):
                self._runjob(job)  # no token at all
            self.assertEqual(job.state, "enqueued")
            self._runjob(job, "tok-1")
            self.assertEqual(job.state, "done")
            self.assertEqual(self._created("qjsl token"), 1)
            # a replay of the very same request finds it done: nothing runs twice
            with self.assertLogs(OUR_LOGGER, "WARNING"):
                self._runjob(job, "tok-1")
            self.assertEqual(self._created("qjsl token"), 1)

    def test_the_answer_says_when_the_job_is_done(self):
        # the runner then frees its slot without asking the database
        with mock.patch.object(flag, "SKIP_LOCKED", True):
            job = self._enqueued("qjsl ended", "tok-6")
            with self.assertLogs(OUR_LOGGER, "WARNING"):
                refused = self._runjob(job, "stale-token")
            self.assertNotIn(runjob.STATE_HEADER, refused.headers)
            answer = self._runjob(job, "tok-6")
            self.assertEqual(job.state, "done")
            self.assertEqual(answer.headers.get(runjob.STATE_HEADER), "done")
        with mock.patch.object(flag, "SKIP_LOCKED", False):
            job = self._enqueued("qjsl ended flag off", "tok-7")
            answer = self._runjob(job)
            self.assertEqual(job.state, "done")
            self.assertNotIn(runjob.STATE_HEADER, answer.headers)  # stock, untouched

    def test_the_token_in_the_query_string_still_runs_the_job(self):
        with mock.patch.object(flag, "SKIP_LOCKED", True):
            job = self._enqueued("qjsl query token", "tok-5")
            self._runjob(job, "tok-5", in_query=True)
            self.assertEqual(job.state, "done")
            self.assertEqual(self._created("qjsl query token"), 1)

    def test_a_job_without_token_is_started_by_no_request(self):
        # left enqueued by a stock runner before the flag was switched on, or
        # set so by hand: the runners hand it back to pending and claim it
        with mock.patch.object(flag, "SKIP_LOCKED", True):
            job = self._enqueued("qjsl stock claim", None)
            for token in (None, "", "0123456789abcdef-1"):
                with self.assertLogs(OUR_LOGGER, "WARNING") as ours:
                    self._runjob(job, token)
                self.assertIn("it has no claim token", ours.output[0])
                self.assertEqual(job.state, "enqueued")
            self.assertEqual(self._created("qjsl stock claim"), 0)

    def test_flag_off_is_the_stock_path(self):
        with mock.patch.object(flag, "SKIP_LOCKED", False):
            job = self._enqueued("qjsl flag off", "tok-2")
            self._runjob(job)  # stock queue_job ignores tokens
            self.assertEqual(job.state, "done")
            self.assertEqual(self._created("qjsl flag off"), 1)

    def test_unknown_job_is_left_to_the_stock_path(self):
        # OCA's 19.0 controller tests go through runjob with such a uuid
        with mock.patch.object(flag, "SKIP_LOCKED", True), self.assertLogs(
            STOCK_LOGGER, "WARNING"
        ) as stock, self.assertNoLogs(OUR_LOGGER, "WARNING"):
            self._get_runjob("no-such-job", "tok")
        self.assertIn("does not exist", stock.output[0])


@tagged("post_install", "-at_install")
class TestRunJobCommit(RunJobCase):
    """Flag on, queue_job's commit rules hold as it defines them (18.0+):
    a commit inside a job fails the job, unless its function allows it."""

    def setUp(self):
        super().setUp()
        if not series.ALLOW_COMMIT:
            self.skipTest(f"queue_job {series.SERIES} has no commit blocking")

        def qjsl_commit(records, vals):
            # what queue_job forbids in a job unless its function allows it
            records.env.cr.commit()  # pylint: disable=invalid-commit

        patch = mock.patch.object(type(self.env["res.partner"]), "qjsl_commit", create=True,
                                  new=qjsl_commit)
        patch.start()
        self.addCleanup(patch.stop)

    def test_commit_in_a_job_is_forbidden(self):
        with mock.patch.object(flag, "SKIP_LOCKED", True):
            job = self._enqueued("qjsl commit", "tok-3", method="qjsl_commit")
            # the job fails (its failed state is written on a cursor of its
            # own, which HttpCase's request rollback undoes: the log says it)
            with self.assertLogs(STOCK_LOGGER, "ERROR") as stock:
                answer = self._runjob(job, "tok-3")
            self.assertIn("Commit is forbidden in queue jobs", stock.output[0])
            self.assertNotEqual(job.state, "done")
            # not said done: the runner asks the database
            self.assertNotIn(runjob.STATE_HEADER, answer.headers)

    def test_allow_commit_job_runs(self):
        self.env["queue.job.function"].create({
            "model_id": self.env.ref("base.model_res_partner").id,
            "method": "qjsl_commit", "allow_commit": True,
        })
        with mock.patch.object(flag, "SKIP_LOCKED", True):
            job = self._enqueued("qjsl allow commit", "tok-4", method="qjsl_commit")
            self._runjob(job, "tok-4")
            self.assertEqual(job.state, "done")
