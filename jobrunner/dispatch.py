"""Dispatch: the runjob HTTP client (OCA's GET /queue_job/runjob plus our
fencing token) with its keep-alive pool. Each request runs in a greenlet of
its own and hands its outcome back once, through the callback it was sent
with; the database, not the answer, decides what happened to the job."""

import http.client
from base64 import b64encode
from urllib.parse import urlencode

import gevent


HTTP_KEEP = 64  # idle kept-alive connections to the executor, at most


def not_taken(outcome):
    """The executor could not take the job: back off before claiming again."""
    return outcome in ("refused", "lost") or outcome.startswith("http-5")


class Dispatcher:
    def __init__(self, cfg, stats):
        self.cfg = cfg
        self.stats = stats
        self._idle = []  # kept-alive connections to the executor
        self._auth = {}
        if cfg.http_auth_user:
            token = b64encode(f"{cfg.http_auth_user}:{cfg.http_auth_password or ''}".encode()).decode()
            self._auth = {"Authorization": "Basic " + token}

    def send(self, dbname, job, done, log):
        """Ask the executor to run `job`; done(outcome) is called once with
        "http-<status>", "refused" or "lost"."""
        self.stats["dispatched"] += 1
        gevent.spawn(self._runjob, dbname, job, done, log)

    def _runjob(self, dbname, job, done, log):
        query = urlencode({"db": dbname, "job_uuid": job.uuid, "token": job.token})
        try:
            outcome = self._get("/queue_job/runjob?" + query)
        except ConnectionRefusedError:
            outcome = "refused"
        except (OSError, http.client.HTTPException) as exc:
            # a timeout or a cut is not a failure by itself: the database decides
            outcome = "lost"
            log.info("runjob-no-answer", "runjob request ended without answer: %s", exc,
                     uuid=job.uuid)
        done(outcome)

    def _get(self, path):
        """GET on a kept-alive connection when one is idle. A kept connection
        the server closed meanwhile fails before any answer: the request is
        sent once more on a new one (a duplicate can only be refused: the
        token lets one request start the job)."""
        cfg = self.cfg
        for attempt in (0, 1):
            conn = self._idle.pop() if (self._idle and not attempt) else None
            reused = conn is not None
            if conn is None:
                cls = http.client.HTTPSConnection if cfg.scheme == "https" else http.client.HTTPConnection
                conn = cls(cfg.host, cfg.port, timeout=cfg.http_timeout)
            try:
                conn.request("GET", path, headers=self._auth)
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
            return f"http-{response.status}"
