# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Periodic jobs: a job defined once, enqueued by the runners at each tick.

The runners read this table (jobrunner/sql/migrations/0004_periodic.sql is
the contract) and copy job_template into a new queue_job row at each tick;
/queue_job/runjob then runs it like any job. Odoo's part is to validate the
definition and to write job_template: the row queue_job itself writes for
``env[model_name].with_delay(...).method_name(*args, **kwargs)``."""

import json

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError
from odoo.addons.base.models.res_partner import _tz_get
from odoo.addons.queue_job.job import STATES, Job

from jobrunner import queries
from jobrunner.errors import ConfigError

from .. import flag, hints, series

# seconds per interval unit; months have no fixed length (ir.cron has them,
# a cron expression such as "0 3 1 * *" says it better)
INTERVAL_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}
# what a fired job depends on: a change rebuilds job_template
TEMPLATE_FIELDS = {"name", "model_name", "method_name", "args", "kwargs", "channel", "priority",
                   "max_retries"}
SCHEDULE_FIELDS = ("schedule_type", "interval_number", "interval_type", "cron", "time_zone",
                   "start")


class _RollBack(Exception):
    """Undoes the savepoint in which the template's model job was written;
    carries the template out of it."""


class QueueJobPeriodic(models.Model):
    _name = "queue.job.periodic"
    _description = "Periodic Job"
    _table = "queue_job_periodic"
    _order = "name, id"

    name = fields.Char(required=True, help="Also the description of the jobs it enqueues.")
    active = fields.Boolean(default=True)
    model_name = fields.Char(
        string="Model", required=True,
        help="Technical name of the model, e.g. res.partner. The method is called on its empty "
             "recordset, as an ir.cron calls model.method(): search the records to act on "
             "inside the method.")
    method_name = fields.Char(string="Method", required=True,
                              help="A public method of the model (not starting with _).")
    args = fields.Text(string="Arguments", default="[]", required=True,
                       help='Positional arguments as a JSON list, e.g. [30, "draft"].')
    kwargs = fields.Text(string="Keyword Arguments", default="{}", required=True,
                         help='Keyword arguments as a JSON object, e.g. {"limit": 100}.')

    schedule_type = fields.Selection(
        [("interval", "Every"), ("cron", "Cron expression")], default="interval", required=True)
    interval_number = fields.Integer(string="Every", default=1)
    interval_type = fields.Selection(
        [("seconds", "Seconds"), ("minutes", "Minutes"), ("hours", "Hours"), ("days", "Days"),
         ("weeks", "Weeks")], string="Interval Unit", default="minutes")
    # what the runners read; NULL for cron definitions (_unset_interval)
    interval_seconds = fields.Integer(compute="_compute_interval_seconds", store=True)
    cron = fields.Char(
        compute="_compute_cron", store=True, readonly=False,
        help='Five fields: minute hour day-of-month month day-of-week, e.g. "0 3 * * 1-5" '
             "(03:00 on weekdays), evaluated in the time zone below.")
    time_zone = fields.Selection(_tz_get, default=lambda self: self.env.user.tz or "UTC",
                                 help="Time zone of the cron expression.")
    start = fields.Datetime(
        required=True, default=fields.Datetime.now,
        help="No tick before this. Intervals count from it: start, start + interval...")
    allow_overlap = fields.Boolean(
        help="Enqueue at a tick even if the job of the previous tick has not ended yet. "
             "Off: that tick is skipped.")
    channel = fields.Char(help="Empty: the channel of the method's job function, as with_delay "
                               "would choose.")
    priority = fields.Integer(default=10, help="Lower runs first, as for any job.")
    max_retries = fields.Integer(default=5, help="0: retry without limit, as for any job.")
    job_template = fields.Json(readonly=True, copy=False,
                               help="The queue_job row copied at each tick (written on save).")
    job_template_text = fields.Text(string="Job Template (readable)",
                                    compute="_compute_job_template_text")
    run_as_id = fields.Many2one("res.users", string="Runs As", compute="_compute_from_template",
                                help="The user who last saved the definition, as with_delay.")
    job_func_string = fields.Char(string="Task", compute="_compute_from_template")

    next_fire = fields.Datetime(compute="_compute_next_fire", string="Next Run")
    last_tick = fields.Datetime(compute="_compute_last")
    last_skipped = fields.Boolean(compute="_compute_last", string="Last Tick Skipped",
                                  help="The job of the tick before was still running.")
    last_job_id = fields.Many2one("queue.job", compute="_compute_last")
    last_job_state = fields.Selection(STATES, compute="_compute_last")
    job_count = fields.Integer(compute="_compute_job_count", string="Jobs")

    @api.depends("schedule_type", "interval_number", "interval_type")
    def _compute_interval_seconds(self):
        for rec in self:
            if rec.schedule_type == "interval":
                rec.interval_seconds = rec.interval_number * INTERVAL_UNITS.get(rec.interval_type, 0)
            else:
                rec.interval_seconds = 0

    @api.depends("schedule_type")
    def _compute_cron(self):
        for rec in self:
            if rec.schedule_type != "cron":
                rec.cron = False

    @api.depends("job_template")
    def _compute_job_template_text(self):
        for rec in self:
            rec.job_template_text = json.dumps(rec.job_template, indent=2, sort_keys=True) \
                if rec.job_template else False

    @api.depends("job_template")
    def _compute_from_template(self):
        for rec in self:
            template = rec.job_template or {}
            rec.run_as_id = template.get("user_id") or False
            rec.job_func_string = template.get("func_string") or False

    def _schedule(self):
        """The jobrunner schedule of this definition (ConfigError if bad)."""
        from jobrunner import schedule  # the runner side's module

        self.ensure_one()
        return schedule.check(
            interval_seconds=self.interval_seconds or None,
            cron=self.cron or None,
            time_zone=self.time_zone or None,
            start=self.start,
        )

    @api.depends(*SCHEDULE_FIELDS, "active")
    def _compute_next_fire(self):
        now = fields.Datetime.now()
        for rec in self:
            rec.next_fire = False
            if not (rec.active and rec.id):
                continue
            try:
                schedule = rec._schedule()
            except ConfigError:  # refused on save: only a row written in SQL gets here
                continue
            rec.next_fire = schedule.next_after(now) or False

    def _compute_last(self):
        ticks = {}
        ids = [rec.id for rec in self if isinstance(rec.id, int)]
        if ids:
            self.env.cr.execute(queries.get("periodic_last_ticks"), {"ids": ids})
            ticks = {row[0]: row for row in self.env.cr.fetchall()}
        uuids = [row[3] for row in ticks.values() if row[3]]
        jobs = {j.uuid: j for j in self.env["queue.job"].search([("uuid", "in", uuids)])}
        for rec in self:
            _id, tick, skipped, uuid, _fired = ticks.get(rec.id, (None,) * 5)
            rec.last_tick = tick or False
            rec.last_skipped = bool(skipped)
            rec.last_job_id = jobs.get(uuid, False)
            rec.last_job_state = rec.last_job_id.state

    def _jobs_domain(self):
        # no column links a job to its definition: the same call does
        self.ensure_one()
        if self.job_func_string:
            return [("func_string", "=", self.job_func_string)]
        return [("model_name", "=", self.model_name), ("method_name", "=", self.method_name)]

    def _compute_job_count(self):
        for rec in self:
            rec.job_count = self.env["queue.job"].search_count(rec._jobs_domain()) \
                if rec.id else 0

    def action_view_jobs(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("queue_job.action_queue_job")
        action.update({"domain": self._jobs_domain(), "context": {}})
        return action

    # validation: each message names the definition, the value and the fix

    @api.constrains("model_name", "method_name")
    def _check_method(self):
        for rec in self:
            if rec.model_name not in self.env:
                raise ValidationError(_(  # pylint: disable=prefer-env-translation
                    "Periodic job %(name)s: no model %(model)r: give the technical name of an "
                    "installed model, e.g. res.partner.", name=rec.name, model=rec.model_name))
            method = getattr(type(self.env[rec.model_name]), rec.method_name or "", None)
            if (not rec.method_name or rec.method_name.startswith("_") or not callable(method)
                    or rec.method_name in self.env[rec.model_name]._fields):
                raise ValidationError(_(  # pylint: disable=prefer-env-translation
                    "Periodic job %(name)s: %(model)s has no public method %(method)r: give the "
                    "name of a method of that model that does not start with _.",
                    name=rec.name, model=rec.model_name, method=rec.method_name))

    @api.constrains("args", "kwargs")
    def _check_arguments(self):
        for rec in self:
            rec._call_arguments()

    def _call_arguments(self):
        self.ensure_one()
        for field, kind, example in (("args", list, "[]"), ("kwargs", dict, "{}")):
            text = self[field] or example
            try:
                value = json.loads(text)
            except ValueError:
                value = None
            if not isinstance(value, kind):
                raise ValidationError(_(  # pylint: disable=prefer-env-translation
                    "Periodic job %(name)s: %(field)s %(value)r is not a JSON %(kind)s: write "
                    "e.g. %(example)s.", name=self.name, field=self._fields[field].string,
                    value=text, kind="list" if kind is list else "object", example=example))
        return json.loads(self.args or "[]"), json.loads(self.kwargs or "{}")

    @api.constrains(*SCHEDULE_FIELDS)
    def _check_schedule(self):
        for rec in self:
            if rec.schedule_type == "interval" and not rec.interval_type:
                raise ValidationError(_(  # pylint: disable=prefer-env-translation
                    "Periodic job %(name)s: choose the unit of its interval.", name=rec.name))
            if rec.schedule_type == "interval" and rec.interval_number < 1:
                raise ValidationError(_(  # pylint: disable=prefer-env-translation
                    "Periodic job %(name)s: interval %(number)s is not a positive number: "
                    "give 1 or more.", name=rec.name, number=rec.interval_number))
            if rec.schedule_type == "cron" and not rec.cron:
                raise ValidationError(_(  # pylint: disable=prefer-env-translation
                    "Periodic job %(name)s: the cron expression is empty: write one, e.g. "
                    "\"0 3 * * *\" for 03:00 every day.", name=rec.name))
            try:
                rec._schedule()
            except ConfigError as exc:
                raise ValidationError(_(  # pylint: disable=prefer-env-translation
                    "Periodic job %(name)s: %(error)s", name=rec.name, error=exc)) from None

    # job_template and the runners' hint

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._schedule_type_from_vals(vals)
        records = super().create(vals_list)
        records._write_job_template()
        records._unset_interval()
        self._hint_runners()
        return records

    def write(self, vals):
        self._schedule_type_from_vals(vals)
        res = super().write(vals)
        if TEMPLATE_FIELDS & set(vals) and not self.env.context.get("queue_job_periodic_template"):
            self._write_job_template()
        self._unset_interval()
        self._hint_runners()
        return res

    def unlink(self):
        # past jobs stay; tick rows go with the definition (ON DELETE CASCADE)
        res = super().unlink()
        self._hint_runners()
        return res

    @api.model
    def _schedule_type_from_vals(self, vals):
        # code and data files give a cron expression without saying its type
        if vals.get("cron") and "schedule_type" not in vals:
            vals["schedule_type"] = "cron"

    def _unset_interval(self):
        self.flush_recordset()
        self.env.cr.execute(queries.get("periodic_interval_unset"), {"ids": self.ids})

    def _hint_runners(self):
        if flag.is_on():
            hints.periodic_after_commit(self.env.cr)

    def _write_job_template(self):
        for rec in self:
            template = rec._build_job_template()
            rec.with_context(queue_job_periodic_template=True).write({"job_template": template})

    def _build_job_template(self):
        """The queue_job row of one fire, as queue_job itself writes it.

        queue_job's own Job writes a real row inside a savepoint that is then
        rolled back: job_function_id, channel, records' serialization, user,
        company and any _job_store_values of other addons come out exactly as
        with_delay would make them, on every series, without repeating its
        logic. Job.store() is called rather than with_delay(): the latter
        runs the method at once under queue_job__no_delay / QUEUE_JOB__NO_DELAY
        and drops the job when an identity_key matches. A NOTIFY of the stock
        trigger (flag off) is discarded with the rolled-back savepoint."""
        self.ensure_one()
        args, kwargs = self._call_arguments()
        # tracking_disable: no mail.thread work is left for precommit;
        # queue_job_skiplocked_template: no wake-up hint for a row never committed
        recordset = self.env[self.model_name].with_context(
            tracking_disable=True, queue_job_skiplocked_template=True)
        job = Job(getattr(recordset, self.method_name), args=tuple(args), kwargs=kwargs,
                  priority=self.priority, max_retries=self.max_retries,
                  channel=self.channel or None, description=self.name)
        try:
            with self.env.cr.savepoint():
                job.store()
                self.env.flush_all()
                self.env.cr.execute(queries.get("periodic_job_template"), {"uuid": job.uuid})
                raise _RollBack(self.env.cr.fetchone()[0])
        except _RollBack as done:
            return done.args[0]

    @api.model
    def _for_series(self):
        """Views whose XML differs between series (<tree> on 17.0, <list>
        from 18.0), written by data/queue_job_periodic_views.xml's call."""
        tag = series.LIST_VIEW
        arch = f"""<{tag} decoration-muted="not active">
            <field name="name"/>
            <field name="model_name"/>
            <field name="method_name"/>
            <field name="interval_seconds" string="Every (s)" invisible="schedule_type != 'interval'"/>
            <field name="cron" invisible="schedule_type != 'cron'"/>
            <field name="schedule_type" column_invisible="1"/>
            <field name="channel"/>
            <field name="next_fire"/>
            <field name="last_job_state" widget="badge"/>
            <field name="active" widget="boolean_toggle"/>
        </{tag}>"""
        self.env["ir.ui.view"]._load_records([{
            "xml_id": "queue_job_skiplocked.view_queue_job_periodic_list",
            "values": {"name": "queue.job.periodic.list", "model": self._name, "type": tag,
                       "arch": arch},
            "noupdate": False,
        }])
        self.env["ir.actions.act_window"]._load_records([{
            "xml_id": "queue_job_skiplocked.action_queue_job_periodic",
            "values": {"name": "Periodic Jobs", "res_model": self._name,
                       "search_view_id": self.env.ref(
                           "queue_job_skiplocked.view_queue_job_periodic_search").id,
                       "view_mode": f"{tag},form",
                       "view_id": self.env.ref(
                           "queue_job_skiplocked.view_queue_job_periodic_list").id,
                       "help": """<p class="o_view_nocontent_smiling_face">Define a periodic
                       job</p><p>The runners enqueue it at each tick of its schedule.</p>"""},
            "noupdate": False,
        }])
