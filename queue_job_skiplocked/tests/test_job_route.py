# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json

from odoo.tests import common, new_test_user, tagged


@tagged("post_install", "-at_install")
class TestJobRoute(common.HttpCase):
    """GET /queue_job_skiplocked/job/<uuid>: state, result and error for API
    clients; unknown and forbidden uuids are the same 404."""

    def _get(self, uuid, wait=None):
        url = f"/queue_job_skiplocked/job/{uuid}" + (f"?wait={wait}" if wait is not None else "")
        return self.url_open(url, timeout=60, allow_redirects=False)

    def test_a_manager_reads_a_job_and_others_get_the_same_404(self):
        job = self.env["res.partner"].with_delay().create({"name": "qjsl route"})
        self.authenticate("admin", "admin")
        res = self._get(job.uuid)
        self.assertEqual(res.status_code, 200)
        body = json.loads(res.content)
        self.assertEqual((body["uuid"], body["state"]), (job.uuid, "pending"))
        unknown = self._get("no-such-uuid")
        self.assertEqual(unknown.status_code, 404)
        bad = self._get(job.uuid, wait="soon")
        self.assertEqual(bad.status_code, 400)
        self.assertIn("invalid wait 'soon'", json.loads(bad.content)["error"])
        new_test_user(self.env, login="qjsl_plain", groups="base.group_user")
        self.authenticate("qjsl_plain", "qjsl_plain")
        forbidden = self._get(job.uuid)
        self.assertEqual((forbidden.status_code, forbidden.content), (unknown.status_code,
                                                                        unknown.content))

    def test_without_a_session_nothing_is_shown(self):
        job = self.env["res.partner"].with_delay().create({"name": "qjsl route anon"})
        res = self._get(job.uuid)
        # Odoo's answer to any auth="user" route without a session: to the login
        self.assertEqual(res.status_code, 303)
        self.assertIn("/web/login", res.headers["Location"])
        self.assertNotIn(b'"state"', res.content)
