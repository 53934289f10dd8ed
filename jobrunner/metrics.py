"""Health and metrics of a runner, on an opt-in port (--metrics-port):
/healthz answers 200 while every database loop is alive and its database
answered recently, 503 otherwise; /metrics is Prometheus text format."""

import logging
import time
from datetime import timezone

import gevent.lock
from werkzeug.wrappers import Request, Response

from . import db as dbmod, logs, queries

_logger = logging.getLogger("jobrunner.metrics")  # the HTTP server's own errors
_log = logs.Log("jobrunner.metrics")

# claim round latency buckets, seconds
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Histogram:
    def __init__(self, buckets=BUCKETS):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value):
        self.total += 1
        self.sum += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1


# counter name in Runner.stats -> (metric, help)
COUNTERS = {
    "claims": ("queue_job_runner_claim_rounds_total", "claim rounds run"),
    "claimed": ("queue_job_runner_claimed_total", "jobs claimed"),
    "dispatched": ("queue_job_runner_dispatched_total", "runjob requests sent"),
    "finished_done": ("queue_job_runner_done_total", "claimed jobs seen done"),
    "finished_failed": ("queue_job_runner_failed_total", "claimed jobs seen failed"),
    "released": ("queue_job_runner_released_total", "claims handed back to pending unstarted"),
    "recovered": ("queue_job_runner_requeued_total", "jobs of dead runners or executions requeued"),
    "dead_executions": ("queue_job_runner_dead_executions_total",
                        "started jobs whose execution died (Odoo worker killed or gone) requeued or failed"),
    "reconnects": ("queue_job_runner_db_reconnects_total", "database reconnections"),
    "periodic_fired": ("queue_job_runner_periodic_fired_total",
                       "periodic ticks this runner decided with a new job"),
    "periodic_skipped": ("queue_job_runner_periodic_skipped_total",
                         "periodic ticks this runner decided as skipped (previous job running)"),
}


def render(runner):
    stats, lines = runner.stats, []

    def metric(name, kind, help_, samples):
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{lab}}} {value}" if lab else f"{name} {value}")

    for key, (name, help_) in COUNTERS.items():
        metric(name, "counter", help_, [({}, stats.get(key, 0))])
    wakeups = sorted((k[len("wakeup_"):], v) for k, v in stats.items() if k.startswith("wakeup_"))
    metric("queue_job_runner_wakeups_total", "counter", "loop wake-ups by cause (hint, timer, slot...)",
           [({"cause": cause}, v) for cause, v in wakeups])
    metric("queue_job_runner_not_taken_total", "counter",
           "runjob answers that started no job, by executor and answer (http-404, refused, lost...)",
           [({"target": t.name, "answer": answer}, n) for t in runner.dispatcher.targets
            for answer, n in sorted(t.not_taken_counts.items())])
    inflight = {}
    for item in runner.slots.inflight.values():
        key = (item.db, item.job.channel or "root")
        inflight[key] = inflight.get(key, 0) + 1
    metric("queue_job_runner_capacity", "gauge",
           "configured node capacity per channel; isolated: not counted against its ancestors",
           [({"channel": ch.name, "isolated": str(ch.isolated).lower()}, ch.capacity)
            for ch in runner.cfg.channel_tree.channels if ch.capacity is not None])
    metric("queue_job_runner_in_flight", "gauge", "jobs claimed by this runner and not finished",
           [({"db": db, "channel": ch}, n) for (db, ch), n in sorted(inflight.items())])
    metric("queue_job_runner_periodic_next_fire_timestamp_seconds", "gauge",
           "when each periodic job timed here is next due (Unix time, database clock)",
           [({"db": loop.dbname, "periodic": t.id, "name": t.name},
             t.due.replace(tzinfo=timezone.utc).timestamp())
            for loop in runner.loops if loop.periodic is not None
            for t in sorted(loop.periodic.timers.values(), key=lambda t: t.id)
            if t.due is not None])
    hist = runner.claim_latency
    name = "queue_job_runner_claim_seconds"
    lines.append(f"# HELP {name} claim round latency")
    lines.append(f"# TYPE {name} histogram")
    for bound, count in zip(hist.buckets, hist.counts):
        lines.append(f'{name}_bucket{{le="{bound}"}} {count}')
    lines.append(f'{name}_bucket{{le="+Inf"}} {hist.total}')
    lines.append(f"{name}_sum {hist.sum}")
    lines.append(f"{name}_count {hist.total}")
    database_gauges(runner, metric)
    metric("queue_job_runner_up", "gauge", "1 when /healthz would answer 200", [({}, int(healthy(runner)[0]))])
    return "\n".join(lines) + "\n"


READ_EVERY = 5.0  # seconds: a scrape within this of the last reading gets that reading


class DatabaseGauges:
    """One database's state, the same for every runner serving it: alert on
    max by (db), never sum. Read when /metrics is scraped, at most once per
    READ_EVERY whatever the number of scrapers, in two statements on the
    loop's connection: the registry with its liveness locks (status_runners,
    as `status`), pending jobs per channel (pending_gauges: the pending
    partial index, never the done/failed history) and each periodic
    definition's latest tick and job (status_periodic). No scrape, no query."""

    def __init__(self, session):
        self.session = session
        self.reading = None  # (runners, pending rows, periodic rows)
        self.read_at = None
        self._single = gevent.lock.Semaphore()  # one reading at a time; others get the last

    def read(self):
        """The last reading, renewed when older than READ_EVERY; None while
        disconnected (a stale reading would tell of runners long gone)."""
        if self.session.conn is None:
            return None
        if self.read_at is not None and time.monotonic() - self.read_at < READ_EVERY or self._single.locked():
            return self.reading
        with self._single:
            reading = None
            try:
                with self.session.connection() as conn:
                    if conn is not None:  # not closed while we waited for it
                        with conn.cursor() as cr:
                            cr.execute(queries.get("status_runners"))
                            runners = [(r[8], r[9]) for r in cr.fetchall()]  # (alive, in flight)
                            cr.execute(queries.get("pending_gauges"))
                            pending = cr.fetchall()
                            cr.execute(queries.get("status_periodic"))
                            reading = runners, pending, cr.fetchall()
            except (dbmod.OperationalError, dbmod.InterfaceError):
                pass  # the loop sees the same failure and reconnects
            self.reading, self.read_at = reading, time.monotonic()
        return self.reading


# the gauges of DatabaseGauges, each with a `db` label: name -> help
DATABASE_GAUGES = {
    "queue_job_runner_live_runners": "runners holding their liveness lock in this database",
    "queue_job_runner_dead_runners": "registered runners whose liveness lock is free, awaiting recovery",
    "queue_job_runner_dead_runner_claims": "jobs claimed by dead runners and not recovered yet",
    "queue_job_runner_pending_jobs": "pending jobs per channel, future eta included",
    "queue_job_runner_oldest_pending_seconds":
        "age of the oldest due pending job per channel (since its eta, or its creation); 0: none due",
    "queue_job_runner_periodic_last_tick_timestamp_seconds":
        "the latest decided tick of each periodic job (Unix time)",
    "queue_job_runner_periodic_last_job":
        "1 for the state of each periodic job's latest job (state none: no job yet, deleted: gone)",
}


def database_gauges(runner, metric):
    samples = {name: [] for name in DATABASE_GAUGES}
    for loop in runner.loops:
        reading = loop.gauges.read()
        if reading is None:
            continue
        runners, pending, periodic = reading
        db = {"db": loop.dbname}
        samples["queue_job_runner_live_runners"].append((db, sum(alive for alive, _n in runners)))
        samples["queue_job_runner_dead_runners"].append((db, sum(not alive for alive, _n in runners)))
        samples["queue_job_runner_dead_runner_claims"].append(
            (db, sum(n for alive, n in runners if not alive)))
        for channel, count, age in pending:
            samples["queue_job_runner_pending_jobs"].append(({**db, "channel": channel}, count))
            samples["queue_job_runner_oldest_pending_seconds"].append(
                ({**db, "channel": channel}, float(age or 0)))
        for pid, name, _active, *_schedule, tick, _skipped, uuid, state in periodic:
            which = {**db, "periodic": pid, "name": name}
            if tick is not None:
                samples["queue_job_runner_periodic_last_tick_timestamp_seconds"].append(
                    (which, tick.replace(tzinfo=timezone.utc).timestamp()))
            samples["queue_job_runner_periodic_last_job"].append(
                ({**which, "state": state or ("deleted" if uuid else "none")}, 1))
    for name, help_ in DATABASE_GAUGES.items():
        metric(name, "gauge", help_ + " (every runner of it serves the same value)", samples[name])


def _escape(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def healthy(runner):
    """(ok, reason): every loop connected and its database answered recently."""
    if not runner.loops:
        return False, "no database loop yet"
    limit = max(30.0, 3 * runner.cfg.poll_max, runner.cfg.recovery_interval * 2)
    now = time.monotonic()
    for loop in runner.loops:
        last_ok = loop.session.last_ok
        if loop.session.conn is None or last_ok is None:
            return False, f"db={loop.dbname}: not connected"
        if now - last_ok > limit:
            return False, f"db={loop.dbname}: no answer from the database for {now - last_ok:.0f}s"
    if runner.stopping:
        return False, "stopping"
    return True, "ok"


def app(runner):
    def wsgi(environ, start_response):
        request = Request(environ)
        if request.path == "/healthz":
            ok, reason = healthy(runner)
            response = Response(reason + "\n", status=200 if ok else 503, mimetype="text/plain")
        elif request.path == "/metrics":
            response = Response(render(runner), mimetype="text/plain; version=0.0.4")
        else:
            response = Response("not found\n", status=404, mimetype="text/plain")
        return response(environ, start_response)

    return wsgi


def serve(runner, host, port):
    """Start serving in the background (the runner's process is green)."""
    from gevent.pywsgi import WSGIServer

    server = WSGIServer((host, port), app(runner), log=None, error_log=_logger)
    server.start()
    _log.info("metrics-serving", "metrics and health on http://%s:%s/metrics and /healthz", host, port)
    return server
