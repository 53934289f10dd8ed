"""The OCA comparisons' shared set-up: OCA's unmodified runner
(jobrunner.testing.oca) beside ours on one cluster and one executor."""

import contextlib
import time

from jobrunner.testing.oca import OcaRunner


class SideBySide:
    """What the OCA comparisons share: a cluster with `bench_oca` (stock
    trigger, for OCA's runner) and `bench_ours` (our schema, no trigger, as
    with the flag on), one reference executor, OCA's runner laid out."""

    def __init__(self, executor_args=("--no-record",)):
        self.executor_args = executor_args

    def __enter__(self):
        from jobrunner.testing.fixtures import build_db, start_executor

        from .common import cluster, environment

        self.c = cluster()
        try:
            self.oca_runner = OcaRunner()
            self.db_oca = build_db(self.c, "bench_oca", trigger=True)
            self.db_ours = build_db(self.c, "bench_ours", trigger=False)
            self.env = environment(self.db_ours.conn)
            self.executor = start_executor(self.c, *self.executor_args)
        except BaseException:
            self.c.destroy()
            raise
        return self

    @contextlib.contextmanager
    def ours(self, channels="root:4", *extra, processes=1):
        """Our runner(s) on bench_ours, registered and settled."""
        from jobrunner.testing.fixtures import wait_until
        from jobrunner.testing.fixtures import start_runner

        procs = [start_runner(self.c, ["bench_ours"], self.executor.port, "--channels", channels,
                              "--log-level", "WARNING", *extra) for _ in range(processes)]
        try:
            wait_until(lambda: self.db_ours.scalar("SELECT count(*) FROM queue_job_runner") == processes,
                       message="our runners")
            time.sleep(1)  # settle, as the peers got
            yield procs
        finally:
            for p in procs:
                p.terminate()
                p.close()

    @contextlib.contextmanager
    def oca(self, channels="root:4"):
        """OCA's runner on bench_oca, listening and settled."""
        from jobrunner.testing.fixtures import wait_until

        proc = self.oca_runner.start(self.c, "bench_oca", self.executor.port, channels)
        try:
            wait_until(lambda: "ready for db" in proc.output(), timeout=60, message="OCA's runner")
            time.sleep(1)
            yield proc
        finally:
            proc.close()

    def __exit__(self, *exc):
        try:
            self.executor.close()
            for d in (self.db_oca, self.db_ours):
                d.close()
            self.oca_runner.close()
        finally:
            self.c.destroy()
