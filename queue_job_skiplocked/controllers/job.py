# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""GET /queue_job_skiplocked/job/<uuid>[?wait=S]: a job's state, result and
error for API clients, optionally waiting for its end (at most MAX_WAIT s).

Authenticated as Odoo's JSON routes are (the session); from 18.0 also
/queue_job_skiplocked/api/job/<uuid> with an API key (Authorization:
Bearer). Only jobs the user may read under queue_job's access rules: an
unknown uuid and a forbidden one get the same 404. Waits are served where
Odoo serves its long-lived connections (the gevent worker, as /websocket):
a prefork HTTP worker answers at once with the current state."""

from odoo import http
from odoo.exceptions import AccessError
from odoo.http import request

from jobrunner import wait

from .. import hints, series

MAX_WAIT = 60.0


class SkipLockedJobController(http.Controller):
    @http.route("/queue_job_skiplocked/job/<string:job_uuid>", type="http", auth="user",
                methods=["GET"], save_session=False)
    def job_status(self, job_uuid, wait=None, **kw):
        return self._job_status(job_uuid, wait)

    if series.BEARER_AUTH:

        @http.route("/queue_job_skiplocked/api/job/<string:job_uuid>", type="http",
                    auth="bearer", methods=["GET"], save_session=False)
        def job_status_api(self, job_uuid, wait=None, **kw):
            return self._job_status(job_uuid, wait)

    def _job_status(self, job_uuid, wait_arg):
        try:
            seconds = float(wait_arg or 0)
            if not 0 <= seconds < float("inf"):
                raise ValueError
        except ValueError:
            return request.make_json_response(
                {"error": f"invalid wait {wait_arg!r}: seconds, 0 to {MAX_WAIT:g}"}, status=400)
        jobs = request.env["queue.job"]
        try:
            readable = jobs.search_count([("uuid", "=", job_uuid)])
        except AccessError:  # no access to jobs at all: the same answer as unknown
            readable = 0
        if not readable:
            return request.make_json_response({"error": "no such job"}, status=404)
        waited = min(seconds, MAX_WAIT) if series.serves_long_waits() else 0.0
        if waited:
            dbname = request.env.cr.dbname
            request.env.cr.rollback()  # hold no transaction, no snapshot, while waiting
            wait.waiters(hints.conninfo(dbname), dbname).wait(job_uuid, waited)
        job = jobs.search([("uuid", "=", job_uuid)], limit=1)  # as this user reads it now
        body = {"uuid": job.uuid, "state": job.state, "result": job.result or None,
                "exc_name": job.exc_name or None, "exc_message": job.exc_message or None,
                "date_done": job.date_done.isoformat() if job.date_done else None,
                "waited_up_to": waited}
        if waited < seconds and not series.serves_long_waits():
            body["note"] = "waits are served on Odoo's gevent port (gevent_port), as /websocket"
        return request.make_json_response(body)
