# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import SUPERUSER_ID, http

from odoo.addons.queue_job.controllers.main import RunJobController

from jobrunner import logs, queries, runjob

from .. import flag

_log = logs.Log(__name__, inline=True)


class SkipLockedRunJobController(RunJobController):
    @http.route()
    def runjob(self, db, job_uuid, **kw):
        if not flag.is_on():
            return super().runjob(db, job_uuid, **kw)  # stock queue_job, untouched
        http.request.session.db = db
        env = http.request.env(user=SUPERUSER_ID)
        if not self._skiplocked_acquire(env, job_uuid, kw.get("token")):
            return ""
        # The row is locked by this transaction and still enqueued: the stock
        # path re-selects it (same transaction, no wait) and goes on with
        # started + lock row, perform, done / retry / failure.
        return super().runjob(db, job_uuid, **kw)

    def _skiplocked_acquire(self, env, job_uuid, token):
        """Lock the job if it is enqueued with this token; never wait."""
        def try_lock(cr):
            # a fresh transaction: its snapshot is taken by the statement
            # below, so REPEATABLE READ sees the claim that sent us here
            cr.rollback()
            cr.execute(queries.get("runjob_lock"), {"uuid": job_uuid, "token": token})
            return cr.fetchone()

        return runjob.acquire(env.cr, job_uuid, token, try_lock, _log, db=env.cr.dbname) is not None
