"""The runner process: configuration and logging first, then gevent's
patch, then the loops (one greenlet per database), signals, the parent
watch and database discovery.

Nothing here imports gevent or the loop at module level: the patch must come
before either (and after logging is set up: gevent's import may warn).
"""

import signal
import time
from collections import Counter

from . import config as config_mod, db as dbmod, green, logs, metrics, parent, schema
from .errors import first_line

_log = logs.Log("jobrunner.runner")


class Runner:
    """The loops of one process and what they share: node capacity (Slots),
    the HTTP dispatcher, counters."""

    def __init__(self, cfg):
        from .dispatch import Dispatcher
        from .loop import Slots

        self.cfg = cfg
        self.slots = Slots(cfg.channel_tree)
        self.stats = Counter()
        self.claim_latency = metrics.Histogram()
        self.dispatcher = Dispatcher(cfg, self.stats)
        self.stopping = False
        self.loops = []

    def stop(self, *_, quiet=False):
        if not self.stopping and not quiet:
            _log.info("stop-requested", "stop requested: no new claims; waiting up to %.0fs for "
                      "jobs in flight", self.cfg.grace)
        self.stopping = True
        for loop in self.loops:
            loop.poke("stop")

    def run(self, databases):
        import gevent

        from .loop import DatabaseLoop

        self.loops = [DatabaseLoop(self, name) for name in databases]
        greenlets = [gevent.spawn(loop.run) for loop in self.loops]
        for g in greenlets:  # a bug in one loop: stop the others, then exit 1 with it
            g.link_exception(lambda _g: self.stop(quiet=True))
        gevent.joinall(greenlets, raise_error=False)
        for loop in self.loops:
            if loop.fatal is not None:
                raise loop.fatal
        for g in greenlets:
            if g.exception is not None:
                raise g.exception
        return 0


def main(args):
    cfg = config_mod.build(args)
    logs.setup(cfg.log_level, cfg.log_format, cfg.log_file, cfg.sources.get("log_file"))
    green.patch(cfg.db_timeout)
    import gevent

    if cfg.channel_tree.total_capacity == 0:
        _log.warning("capacity-zero", "channels %r give root capacity 0: this runner claims "
                     "nothing", cfg.channels)
    runner = Runner(cfg)
    signal.signal(signal.SIGTERM, runner.stop)
    signal.signal(signal.SIGINT, runner.stop)
    if cfg.metrics_port:
        metrics.serve(runner, cfg.metrics_host, cfg.metrics_port)
    parent_pid = parent.watched_pid()
    if parent_pid is not None:
        gevent.spawn(parent.watch, parent_pid, lambda: runner.stopping, runner.stop, _log)
    while True:
        try:
            databases = schema.discover(cfg)
            break
        except dbmod.OperationalError as exc:
            _log.error("server-unreachable", "database server %s unreachable (%s); retrying in 5s",
                       dbmod.describe(cfg.db), first_line(exc))
            if runner.stopping:
                return 0
            time.sleep(5)
    try:
        return runner.run(databases)
    finally:
        # stopped: a repeated SIGTERM (systemd, a supervisor, a second kill)
        # must not kill the exit under way, where Python has put back the
        # default handler; ignored handlers stay ignored through it
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
