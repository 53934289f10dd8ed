# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import inspect

from odoo import http

from odoo.addons.queue_job.controllers.main import RunJobController

from jobrunner import logs, queries, runjob, wait

from .. import flag, hints, series

_log = logs.Log(__name__, inline=True)

# an instance method in queue_job 17.0, a classmethod from 18.0
_STOCK_TRY_PERFORM_IS_CLASSMETHOD = isinstance(
    inspect.getattr_static(RunJobController, "_try_perform_job"), classmethod)


def _say_done():
    """The stock _try_perform_job returned: the job is done and committed.
    The answer says so (runjob.STATE_HEADER) and the runner frees its slot
    without a states query. Headers set here reach only a normal answer (an
    error answer drops them: the runner asks the database, as without the
    header). No request (OCA's tests call the method directly): nothing."""
    if flag.is_on() and http.request:
        http.request.future_response.headers.set(runjob.STATE_HEADER, "done")


class SkipLockedRunJobController(RunJobController):
    # the stock route in that series' signature; flag off: stock, untouched
    if series.RUNJOB_DB_ARGUMENT:

        @http.route()
        def runjob(self, db, job_uuid, **kw):
            stock = super().runjob
            return self._skiplocked_runjob(lambda: stock(db, job_uuid, **kw), job_uuid, kw, db)

    else:

        @http.route()
        def runjob(self, job_uuid, **kw):
            stock = super().runjob
            return self._skiplocked_runjob(lambda: stock(job_uuid, **kw), job_uuid, kw)

    if _STOCK_TRY_PERFORM_IS_CLASSMETHOD:

        @classmethod
        def _try_perform_job(cls, env, job):
            result = super()._try_perform_job(env, job)
            _say_done()
            return result

    else:

        def _try_perform_job(self, env, job):
            result = super()._try_perform_job(env, job)
            _say_done()
            return result

    def _skiplocked_runjob(self, stock_runjob, job_uuid, kw, db=None):
        if not flag.is_on():
            return stock_runjob()
        env = series.runjob_superuser_env(db)
        # the runner sends the token as a header (kept out of access logs)
        token = http.request.httprequest.headers.get(runjob.TOKEN_HEADER) or kw.get("token")
        # the fast path is one statement: lock it; the rest only if that fails
        if self._skiplocked_try_lock(env.cr, job_uuid, token) is None:
            if not self._skiplocked_job_exists(env, job_uuid):
                return stock_runjob()  # it does nothing and says so
            if not self._skiplocked_acquire(env, job_uuid, token):
                return ""
        # The row is locked by this transaction and still enqueued: the stock
        # path re-selects it (same transaction, no wait) and goes on as it
        # defines it: started + lock row, perform (commit blocking and
        # allow_commit from 18.0), done / retry / failure, each committed.
        registry = env.registry
        try:
            return stock_runjob()
        finally:
            self._skiplocked_ended(registry, job_uuid)

    def _skiplocked_ended(self, registry, job_uuid):
        """The "job ended" hint for waiters (jobrunner.wait), after the
        job's own commit and outside it: one autocommit statement on this
        process's hint connection (no Odoo cursor: no BEGIN, COMMIT and
        DISCARD ALL per job; the request's may be rolled back)."""
        try:
            hints.send_now(registry.db_name, lambda cr: wait.notify_ended(cr, job_uuid))
        except Exception as exc:  # a lost hint costs waiters latency, nothing else
            _log.warning("ended-hint-not-sent", "job-ended hint not sent: %s", exc,
                         uuid=job_uuid)

    def _skiplocked_job_exists(self, env, job_uuid):
        env.cr.execute("SELECT 1 FROM queue_job WHERE uuid = %s", (job_uuid,))
        return env.cr.fetchone() is not None

    @staticmethod
    def _skiplocked_try_lock(cr, job_uuid, token):
        # a fresh transaction: its snapshot is taken by the statement below,
        # so REPEATABLE READ sees the claim that sent us here (no statement
        # sent when none ran yet on the request's cursor)
        cr.rollback()
        cr.execute(queries.get("runjob_lock"), {"uuid": job_uuid, "token": token})
        return cr.fetchone()

    def _skiplocked_acquire(self, env, job_uuid, token):
        """Lock the job if it is enqueued with this token; never wait."""

        def try_lock(cr):
            return self._skiplocked_try_lock(cr, job_uuid, token)

        return runjob.acquire(env.cr, job_uuid, token, try_lock, _log, db=env.cr.dbname) is not None
