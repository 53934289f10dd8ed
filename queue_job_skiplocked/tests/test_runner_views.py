# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import time

from odoo.exceptions import AccessError, UserError
from odoo.tests import common, new_test_user

from jobrunner import config as core_config, db, queries, status
from jobrunner.session import Session

from .. import hints

VIEWS = [[False, "list"], [False, "form"], [False, "search"]]
MODELS = ("queue.job.runner", "queue.job.status", "queue.job.status.channel", "queue.job")


class TestRunnerViews(common.TransactionCase):
    """A live runner here is what a runner is: a connection of its own that
    holds the runner's advisory lock, taken by the core's Session._lock. Its
    registry row is written with the core's runner_insert, in the test's
    transaction (the test cursor does not see rows committed after it began)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = new_test_user(
            cls.env, "qjsl_manager", groups="base.group_user,queue_job.group_queue_job_manager"
        )
        cls.user = new_test_user(cls.env, "qjsl_user", groups="base.group_user")

    def _runner(self, channels="root:2"):
        """A live runner: (id, its Session)."""
        dbname = self.env.cr.dbname
        cfg = core_config.resolve({"channels": channels}, {}, {}, {})
        cfg.db = hints.conninfo(dbname)
        session = Session(cfg, dbname, on_hint=None, on_lost=None, on_reload=None)
        self.env.cr.execute(queries.get("runner_next_id"))
        session.runner_id = self.env.cr.fetchone()[0]
        session.ctl = db.connect(cfg.db, dbname, application_name="queue-job-runner-control")
        with session.ctl.cursor() as cr:
            session._lock(cr)  # pylint: disable=protected-access
        self.addCleanup(session.close)
        self.env.cr.execute(queries.get("runner_insert"), {
            "id": session.runner_id, "host": "qjsl-test", "pid": session.ctl.get_backend_pid(),
            "version": "test", "channels": channels, "executor": "localhost:8069",
            "executor_workers": None})
        return session.runner_id, session

    def _kill(self, session):
        """What kill -9 of the runner does to its lock: its backend ends."""
        pid = session.ctl.get_backend_pid()
        self.env.cr.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            # pg_stat_activity is a snapshot per transaction unless cleared
            self.env.cr.execute("SELECT pg_stat_clear_snapshot(); "
                                "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,))
            if not self.env.cr.fetchone():
                return
            time.sleep(0.05)
        self.fail("runner backend did not end")

    def _status_alive(self):
        report = status.collect(self.env.cr, self.env.cr.dbname)
        return {r["id"]: r["alive"] for r in report["runners"] + report["dead_runners"]}

    def _jobs(self, n):
        return self.env["queue.job"].browse([
            self.env["res.partner"].with_delay(channel="root.qjsl_views").read(["name"]).db_record().id
            for _ in range(n)])

    def _claim(self, jobs, runner_id, state="enqueued"):
        self.env.cr.execute(
            "UPDATE queue_job SET state = %s, claimed_by = %s, claim_token = md5(id::text), "
            "date_enqueued = now() AT TIME ZONE 'utc' WHERE id = ANY(%s)",
            (state, runner_id, jobs.ids))
        jobs.invalidate_recordset()

    def test_views_load_for_manager_only(self):
        self._runner()
        for model in MODELS:
            views = self.env[model].with_user(self.manager).get_views(VIEWS)
            self.assertEqual(set(views["views"]), {"list", "form", "search"}, model)
            with self.assertRaises(AccessError, msg=model):
                self.env[model].with_user(self.user).get_views(VIEWS)
            with self.assertRaises(AccessError, msg=model):
                self.env[model].with_user(self.user).search_read([], ["id"])
        rows = self.env["queue.job.runner"].with_user(self.manager).search_read(
            [], ["host", "pid", "version", "started_at", "channels", "capacity", "in_flight", "alive"])
        self.assertIn("qjsl-test", [r["host"] for r in rows])
        self.env["queue.job"].with_user(self.manager).search_read(
            [], ["claimed_by", "claimed_runner_id", "date_enqueued"], limit=5)
        # the Channel Overview menu's server action, as the manager runs it
        action = self.env.ref("queue_job_skiplocked.action_queue_job_status").with_user(
            self.manager).run()
        snapshot = self.env["queue.job.status"].with_user(self.manager).browse(action["res_id"])
        self.assertEqual(snapshot.live_runners, len(status.collect(
            self.env.cr, self.env.cr.dbname)["runners"]))
        self.assertIn("live runners:", snapshot.report)
        self.env["queue.job.status.channel"].with_user(self.manager).search_read(
            [("status_id", "=", snapshot.id)], ["channel", "pending", "running", "oldest_pending"])
        runner_action = self.env.ref("queue_job_skiplocked.action_queue_job_runner")
        self.assertIn(runner_action.view_mode.split(",")[0], ("tree", "list"))

    def test_liveness_matches_status(self):
        live_id, _live = self._runner()
        dead_id, dead = self._runner("root:1")
        self._kill(dead)
        expected = self._status_alive()
        self.assertEqual((expected[live_id], expected[dead_id]), (True, False))
        runners = self.env["queue.job.runner"].with_user(self.manager)
        shown = {r["id"]: r["alive"] for r in runners.search_read([], ["alive"])}
        self.assertEqual(shown, expected)
        # the list's filters
        self.assertIn(dead_id, runners.search([("alive", "=", False)]).ids)
        self.assertNotIn(live_id, runners.search([("alive", "=", False)]).ids)
        self.assertIn(live_id, runners.search([("alive", "=", True)]).ids)
        self.assertEqual(runners.browse(live_id).capacity, 2)

    def test_hand_back_dead_runner_only(self):
        live_id, _live = self._runner()
        dead_id, dead = self._runner()
        dead_claims, dead_started, live_claims, pending = (self._jobs(n) for n in (3, 1, 2, 1))
        self._claim(dead_claims, dead_id)
        self._claim(dead_started, dead_id, "started")
        self._claim(live_claims, live_id)
        before = {j.id: (j.state, j.claimed_by, j.claim_token)
                  for j in (dead_started | live_claims | pending).sudo()}
        runners = self.env["queue.job.runner"].with_user(self.manager)
        self.assertEqual(runners.browse(dead_id).in_flight, 4)
        self.assertEqual(dead_claims.claimed_runner_id.id, dead_id)
        with self.assertRaisesRegex(UserError, "is alive"):
            runners.browse(dead_id).action_hand_back()  # not dead yet
        self._kill(dead)
        with self.assertRaisesRegex(UserError, "is alive"):
            runners.browse(live_id).action_hand_back()
        action = runners.browse(dead_id).action_hand_back()
        self.assertEqual(action["tag"], "display_notification")
        (dead_claims | dead_started | live_claims | pending).invalidate_recordset()
        self.assertEqual(set(dead_claims.mapped("state")), {"pending"})
        self.assertEqual(set(dead_claims.mapped("claimed_by")), {0})
        self.assertEqual(before, {j.id: (j.state, j.claimed_by, j.claim_token)
                                  for j in (dead_started | live_claims | pending).sudo()})
        self.assertFalse(runners.browse(dead_id).exists())  # forgotten, as recovery does
        self.assertTrue(runners.browse(live_id).exists())
        with self.assertRaises(AccessError):
            self.env["queue.job.runner"].with_user(self.user).browse(live_id).action_hand_back()
