"""Dispatch: the runjob HTTP client (OCA's GET /queue_job/runjob, in the
runjob protocol of each database's queue_job series, plus our fencing
token) with its keep-alive pool, and what the runner does when the executor
does not take the jobs it is sent. Each request runs in a greenlet of its own
and hands its outcome back once, through the callback it was sent with; the
database, not the answer, decides what happened to the job."""

import http.client
import time
from collections import Counter
from base64 import b64encode
from urllib.parse import urlencode

import gevent

from .backoff import Backoff
from .plan import normalize_channel, within
from .runjob import DB_HEADER, ENDED_STATES, STATE_HEADER, TOKEN_HEADER

HTTP_KEEP = 64  # idle kept-alive connections to the executor, at most


def protocol(series):
    """How a database's runjob requests name it: "db" (?db=, queue_job 17.0
    and 18.0), "header" (X-Odoo-Database, 19.0) or, series unknown, "both"."""
    if series is None:
        return "both"
    return "header" if series >= 19 else "db"


def why_not_taken(outcome, target, dbname):
    """The likely cause and fix of an executor answer that did not start
    the job, for the one log line of a streak."""
    if outcome == "refused":
        return f"nothing listens at {target}: is Odoo running there, and are --host/--port right?"
    if outcome == "lost":
        return ("the request ended without an answer (timeout or cut connection): see that "
                "Odoo's log, and --http-timeout.")
    status = int(outcome[len("http-"):]) if outcome.startswith("http-") else 0
    if status in (401, 403):
        return ("authentication refused: check --http-auth-user/--http-auth-password "
                "(ODOO_QUEUE_JOB_HTTP_AUTH_*) and the proxy in front of Odoo.")
    if status == 404:
        return (f"that Odoo does not serve database {dbname!r}: check its dbfilter and db_name, "
                "that queue_job is installed there, and its series' runjob protocol "
                "(19.0 reads the database from the X-Odoo-Database header).")
    if status >= 500:
        return "the executor failed: see that Odoo's log."
    if status >= 400:
        return "the executor rejected the request: see that Odoo's log."
    return ("it answered but did not start the job: is queue_job_skiplocked installed and its "
            "flag on there? (its log has a runjob-refused line naming the reason)")


class Target:
    """One executor endpoint: where requests go (its keep-alive pool and
    HTTP auth), and its streak of answers that took no job. While a streak
    lasts, claims for this target's channels wait with a growing backoff;
    its first answer is logged once, with its cause."""

    def __init__(self, scheme, host, port, user=None, password=None, timeout=None):
        self.scheme, self.host, self.port, self.timeout = scheme, host, port, timeout
        self.name = f"{scheme}://{host}:{port}"  # never the credentials
        self.backoff = Backoff(0.1, 5.0)
        self.hold_until = 0.0
        self.streak = None  # the outcome that opened the current streak
        self.streak_count = 0
        self.not_taken_counts = Counter()  # answer -> jobs handed back (/metrics)
        self._idle = []  # kept-alive connections
        self._auth = {}
        if user:
            token = b64encode(f"{user}:{password or ''}".encode()).decode()
            self._auth = {"Authorization": "Basic " + token}

    def held(self, now):
        return now < self.hold_until

    def not_taken(self, outcome, count, dbname, log, uuid):
        """`count` jobs sent here were handed back unstarted."""
        self.not_taken_counts[outcome] += count
        delay = self.backoff.next()
        self.hold_until = time.monotonic() + delay
        if self.streak != outcome:  # a new streak, or a new kind of answer
            self.streak = outcome
            log.warning("executor-not-taking", "executor %s did not take %d job(s) (%s). Likely "
                        "cause: %s Handed back; claiming again with backoff (logged once per "
                        "streak)",
                        self.name, count, outcome, why_not_taken(outcome, self.name, dbname),
                        uuid=uuid)
        self.streak_count += count

    def taken(self, log):
        self.backoff.reset()
        self.hold_until = 0.0
        if self.streak is not None:
            log.info("executor-taking", "executor %s takes jobs again, after %d not taken (%s)",
                     self.name, self.streak_count, self.streak)
            self.streak, self.streak_count = None, 0

    def get(self, path, headers):
        """GET on a kept-alive connection when one is idle. A kept connection
        the server closed meanwhile fails before any answer: the request is
        sent once more on a new one (a duplicate can only be refused: the
        token lets one request start the job)."""
        headers = {**self._auth, **headers}
        for attempt in (0, 1):
            conn = self._idle.pop() if (self._idle and not attempt) else None
            reused = conn is not None
            if conn is None:
                cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
                conn = cls(self.host, self.port, timeout=self.timeout)
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if reused:
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            if response.will_close or len(self._idle) >= HTTP_KEEP:
                conn.close()
            else:
                self._idle.append(conn)
            state = response.getheader(STATE_HEADER)
            return f"ended-{state}" if state in ENDED_STATES else f"http-{response.status}"


class Dispatcher:
    """The executor of each channel: the configured one (--host/--port), or
    the one --channel-executors gives a channel and its subchannels."""

    def __init__(self, cfg, stats):
        self.stats = stats
        self.target = Target(cfg.scheme, cfg.host, cfg.port, cfg.http_auth_user,
                             cfg.http_auth_password, cfg.http_timeout)
        self.by_channel = {}  # channel -> Target, most specific first
        for channel, ex in sorted(cfg.channel_executor_map.items(), key=lambda kv: -len(kv[0])):
            self.by_channel[channel] = Target(
                ex.scheme, ex.host, ex.port, ex.user or cfg.http_auth_user,
                ex.password if ex.user else cfg.http_auth_password, cfg.http_timeout)

    @property
    def targets(self):
        return [self.target, *self.by_channel.values()]

    def held_channels(self, channels, now):
        """The channels (names) whose executor waits: none to look up when
        every channel goes to the one executor (held: the loop sleeps)."""
        if not self.by_channel:
            return set()
        return {name for name in channels if self.target_of(name).held(now)}

    def target_of(self, channel):
        """The target of a job's or a bucket's channel."""
        name = normalize_channel(channel)
        for top, target in self.by_channel.items():
            if within(name, top):
                return target
        return self.target

    def send(self, dbname, series, job, done, log):
        """Ask the executor of the job's channel to run it (`series`: its
        database's queue_job series, None if unknown); done(outcome) is
        called once with "ended-<done|failed>" (the executor says so),
        "http-<status>", "refused" or "lost"."""
        self.stats["dispatched"] += 1
        gevent.spawn(self._runjob, self.target_of(job.channel), dbname, protocol(series), job,
                     done, log)

    @staticmethod
    def _runjob(target, dbname, proto, job, done, log):
        params, headers = {}, {}
        if proto != "header":
            params["db"] = dbname
        if proto != "db":
            headers[DB_HEADER] = dbname
        params["job_uuid"] = job.uuid
        headers[TOKEN_HEADER] = job.token
        try:
            outcome = target.get("/queue_job/runjob?" + urlencode(params), headers)
        except ConnectionRefusedError:
            outcome = "refused"
        except (OSError, http.client.HTTPException) as exc:
            # a timeout or a cut is not a failure by itself: the database decides
            outcome = "lost"
            log.info("runjob-no-answer", "runjob request ended without answer: %s", exc,
                     uuid=job.uuid)
        done(outcome)
