# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import select
import uuid
from datetime import datetime, timedelta
from unittest import mock

from odoo import SUPERUSER_ID, api
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import common, new_test_user, tagged
from odoo.addons.queue_job.job import Job

from jobrunner import db, hint

from .. import flag, hints, series
from .test_runjob import RunJobCase

# a fire as the runners make it: the template plus what one fire owns
FIRE_SQL = """
INSERT INTO queue_job
SELECT (jsonb_populate_record(NULL::queue_job, job_template || jsonb_build_object(
    'id', nextval('queue_job_id_seq'), 'uuid', %(uuid)s, 'state', %(state)s,
    'date_created', now() AT TIME ZONE 'utc', 'create_date', now() AT TIME ZONE 'utc',
    'write_date', now() AT TIME ZONE 'utc'))).*
FROM queue_job_periodic WHERE id = %(id)s
"""


class PeriodicCase(common.TransactionCase):
    def _periodic(self, **vals):
        values = {
            "name": "qjsl periodic",
            "model_name": "res.partner",
            "method_name": "create",
            "args": '[{"name": "qjsl periodic partner"}]',
            "interval_number": 5,
            "interval_type": "seconds",
        }
        values.update(vals)
        return self.env["queue.job.periodic"].create(values)

    def _fire(self, periodic, state="pending"):
        job_uuid = str(uuid.uuid4())
        self.env.flush_all()
        self.env.cr.execute(FIRE_SQL, {"uuid": job_uuid, "state": state, "id": periodic.id})
        return job_uuid


@tagged("post_install", "-at_install")
class TestPeriodicValidation(PeriodicCase):
    def assertRefused(self, regex, **vals):
        with self.assertRaisesRegex(ValidationError, regex):
            self._periodic(**vals)

    def test_bad_cron_names_the_expression_and_the_fix(self):
        self.assertRefused(r"invalid cron expression '61 \* \* \* \*'.*fix it", cron="61 * * * *")
        self.assertRefused(r"invalid cron expression 'every day'.*use 5 fields", cron="every day")
        self.assertRefused("cron expression is empty", schedule_type="cron")

    def test_unknown_time_zone_is_refused(self):
        # 17.0's ORM refuses a value outside the selection itself; from 18.0
        # the schedule check does ("unknown time zone ...: use an IANA name")
        with self.assertRaisesRegex((ValueError, ValidationError), "'Mars/Olympus'"):
            self._periodic(cron="0 3 * * *", time_zone="Mars/Olympus")

    def test_model_and_method_must_exist_and_be_public(self):
        self.assertRefused("no model 'res.nothing'.*technical name", model_name="res.nothing")
        self.assertRefused("res.partner has no public method 'no_such_method'",
                           method_name="no_such_method")
        self.assertRefused("has no public method '_compute_display_name'.*does not start with _",
                           method_name="_compute_display_name")
        self.assertRefused("has no public method 'name'", method_name="name")  # a field

    def test_arguments_must_be_json(self):
        self.assertRefused(r"Arguments '\{\}' is not a JSON list", args="{}")
        self.assertRefused("Keyword Arguments 'limit=3' is not a JSON object", kwargs="limit=3")

    def test_interval_must_be_positive(self):
        self.assertRefused("interval 0 is not a positive number", interval_number=0)

    def test_a_write_is_validated_too(self):
        periodic = self._periodic()
        with self.assertRaisesRegex(ValidationError, "invalid cron expression"):
            periodic.write({"cron": "* * *"})


@tagged("post_install", "-at_install")
class TestPeriodicDefinition(PeriodicCase):
    def _columns(self, periodic):
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT interval_seconds, cron, time_zone FROM queue_job_periodic WHERE id = %s",
            (periodic.id,))
        return self.env.cr.fetchone()

    def test_interval_or_cron_as_the_runners_read_them(self):
        periodic = self._periodic(interval_number=2, interval_type="hours")
        self.assertEqual(self._columns(periodic)[:2], (7200, None))
        # a cron expression from code needs no schedule_type
        periodic.write({"cron": "*/5 * * * *", "time_zone": "Europe/Brussels"})
        self.assertEqual(periodic.schedule_type, "cron")
        self.assertEqual(self._columns(periodic), (None, "*/5 * * * *", "Europe/Brussels"))
        periodic.schedule_type = "interval"
        self.assertEqual(self._columns(periodic)[:2], (7200, None))

    def test_next_fire(self):
        start = datetime(2030, 1, 1, 0, 0, 0)
        periodic = self._periodic(start=start)
        self.assertEqual(periodic.next_fire, start)  # the start itself is the first tick
        periodic.start = datetime(2020, 1, 1)
        self.assertLessEqual(periodic.next_fire - datetime.now(), timedelta(seconds=6))
        periodic.active = False
        self.assertFalse(periodic.next_fire)

    def test_template_is_the_row_with_delay_writes(self):
        periodic = self._periodic(channel="root", priority=3, max_retries=2)
        by_hand = self.env["res.partner"].with_delay(
            channel="root", priority=3, max_retries=2, description="qjsl periodic"
        ).create({"name": "qjsl periodic partner"})
        self.env.cr.execute("SELECT to_jsonb(q) FROM queue_job q WHERE uuid = %s", (by_hand.uuid,))
        row = self.env.cr.fetchone()[0]
        template = periodic.job_template
        for column in ("model_name", "method_name", "func_string", "name", "channel", "priority",
                       "max_retries", "user_id", "company_id", "records", "args", "kwargs",
                       "job_function_id", "channel_method_name"):
            self.assertEqual(template.get(column), row[column], column)
        for per_fire in ("id", "uuid", "state", "date_created", "exc_info", "claim_token"):
            self.assertNotIn(per_fire, template)
        # the template's own row is gone with its savepoint
        self.assertEqual(self.env["queue.job"].search_count(
            [("func_string", "=", template["func_string"])]), 1)
        self.assertEqual(periodic.run_as_id, self.env.user)

    def test_template_follows_the_call(self):
        periodic = self._periodic()
        periodic.write({"args": '[{"name": "qjsl other"}]', "channel": "root.periodic"})
        self.assertIn("qjsl other", periodic.job_template["args"])
        self.assertEqual(periodic.job_template["channel"], "root.periodic")
        periodic.name = "qjsl renamed"
        self.assertEqual(periodic.job_template["name"], "qjsl renamed")

    def test_fired_job_runs_with_queue_jobs_own_code(self):
        periodic = self._periodic(kwargs="{}", priority=7, max_retries=3)
        job_uuid = self._fire(periodic)
        job = Job.load(self.env, job_uuid)
        self.assertEqual((job.priority, job.max_retries, job.description),
                         (7, 3, "qjsl periodic"))
        self.assertEqual(job.recordset.env.uid, self.env.uid)
        before = self.env["res.partner"].search_count([("name", "=", "qjsl periodic partner")])
        job.perform()
        after = self.env["res.partner"].search_count([("name", "=", "qjsl periodic partner")])
        self.assertEqual(after, before + 1)

    def test_last_tick_and_jobs(self):
        periodic = self._periodic()
        self.assertFalse(periodic.last_job_id)
        job_uuid = self._fire(periodic)
        self.env.cr.execute(
            "INSERT INTO queue_job_periodic_tick (periodic_id, tick, job_uuid) "
            "VALUES (%s, now() AT TIME ZONE 'utc', %s)", (periodic.id, job_uuid))
        periodic.invalidate_recordset()
        job = self.env["queue.job"].search([("uuid", "=", job_uuid)])
        self.assertEqual(periodic.last_job_id, job)
        self.assertEqual(periodic.last_job_state, "pending")
        self.assertFalse(periodic.last_skipped)
        self.assertEqual(periodic.job_count, 1)
        action = periodic.action_view_jobs()
        self.assertEqual(self.env["queue.job"].search(action["domain"]), job)
        # deleting the definition leaves its jobs
        periodic.unlink()
        self.assertTrue(job.exists())

    def test_views_of_the_series(self):
        view = self.env.ref("queue_job_skiplocked.view_queue_job_periodic_list")
        self.assertEqual(view.type, series.LIST_VIEW)
        action = self.env.ref("queue_job_skiplocked.action_queue_job_periodic")
        self.assertEqual(action.view_mode, f"{series.LIST_VIEW},form")
        for view_type in (series.LIST_VIEW, "form", "search"):
            self.env["queue.job.periodic"].get_views([(False, view_type)])


@tagged("post_install", "-at_install")
class TestPeriodicAccess(PeriodicCase):
    def test_only_job_queue_managers(self):
        user = new_test_user(self.env, login="qjsl_periodic_user", groups="base.group_user")
        with self.assertRaises(AccessError):
            self.env["queue.job.periodic"].with_user(user).search([])
        with self.assertRaises(AccessError):
            self.env["queue.job.periodic"].with_user(user).create({
                "name": "x", "model_name": "res.partner", "method_name": "create"})
        manager = new_test_user(self.env, login="qjsl_periodic_manager",
                                groups="base.group_user,queue_job.group_queue_job_manager")
        periodic = self.env["queue.job.periodic"].with_user(manager).create({
            "name": "qjsl by a manager", "model_name": "res.partner", "method_name": "create",
            "args": '[{"name": "qjsl manager partner"}]'})
        self.assertEqual(periodic.run_as_id, manager)  # jobs run as the user who saved it


@tagged("post_install", "-at_install")
class TestPeriodicHint(PeriodicCase):
    def _listener(self, channel=hint.CHANNEL):
        conn = db.connect(hints.conninfo(self.env.cr.dbname), self.env.cr.dbname)
        self.addCleanup(conn.close)
        with conn.cursor() as cr:
            cr.execute(f"LISTEN {channel}")
        return conn

    @staticmethod
    def _received(conn, timeout=2.0):
        select.select([conn], [], [], timeout)
        conn.poll()
        payloads = [n.payload for n in conn.notifies]
        conn.notifies.clear()
        return payloads

    def test_hint_after_commit_only(self):
        listener = self._listener()
        with mock.patch.object(flag, "SKIP_LOCKED", True):
            periodic = self._periodic()
            self.assertEqual(self._received(listener, 0.2), [])  # nothing before the commit
            self.env.cr.postcommit.run()  # what the commit runs
            self.assertIn("periodic", self._received(listener))
            periodic.unlink()
            self.env.cr.postcommit.run()
            self.assertIn("periodic", self._received(listener))

    def test_no_hint_with_the_flag_off(self):
        with mock.patch.object(flag, "SKIP_LOCKED", False), mock.patch.object(
            hints, "periodic_after_commit"
        ) as after_commit:
            self._periodic()
        after_commit.assert_not_called()

    def test_committed_save_leaves_no_job_and_no_job_notify(self):
        # a real commit, on a cursor of its own: the template's job row and
        # the stock trigger's NOTIFY (flag off) died with their savepoint
        listener = self._listener("queue_job")
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            periodic = env["queue.job.periodic"].create({
                "name": "qjsl committed", "model_name": "res.partner", "method_name": "create",
                "args": '[{"name": "qjsl committed"}]'})
            func_string = periodic.job_template["func_string"]
            periodic_id = periodic.id
        try:
            self.assertEqual(self._received(listener, 0.5), [])
            self.env.cr.execute("SELECT count(*) FROM queue_job WHERE func_string = %s",
                                (func_string,))
            self.assertEqual(self.env.cr.fetchone()[0], 0)
        finally:
            with self.registry.cursor() as cr:
                api.Environment(cr, SUPERUSER_ID, {})["queue.job.periodic"].browse(
                    periodic_id).unlink()


@tagged("post_install", "-at_install")
class TestPeriodicRunjob(RunJobCase):
    def test_fired_job_runs_through_runjob(self):
        periodic = self.env["queue.job.periodic"].create({
            "name": "qjsl periodic runjob", "model_name": "res.partner", "method_name": "create",
            "args": '[{"name": "qjsl periodic runjob"}]'})
        job_uuid = str(uuid.uuid4())
        self.env.flush_all()
        self.env.cr.execute(FIRE_SQL, {"uuid": job_uuid, "state": "enqueued", "id": periodic.id})
        job = self.env["queue.job"].search([("uuid", "=", job_uuid)])
        with mock.patch.object(flag, "SKIP_LOCKED", False):  # the stock controller path
            self._runjob(job)
        self.assertEqual(job.state, "done")
        self.assertEqual(self._created("qjsl periodic runjob"), 1)
