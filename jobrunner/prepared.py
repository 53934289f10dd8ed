"""The runner's claim as a prepared statement with a generic plan, and when
it is planned again.

Planning the claim costs 4-5x its execution (0.78 against 0.19 ms per call,
pg_stat_statements with track_planning), and PostgreSQL's default
plan_cache_mode keeps re-planning a prepared statement whose custom plans
look cheap: the session runs force_generic_plan. A generic plan keeps the
table's size as it was when planned (PostgreSQL re-plans by itself only
after DDL or ANALYZE): one made on an empty queue seq-scans queue_job once
it has grown. So the plan is made at the start of each spell of work and
again every REPLAN_SECONDS within one, and an idle runner polls with the
plain statement (planned each time, one statement per poll).

Only for a connection that is a session of its own (notify mode proves it
at start): behind a transaction pooler EXECUTE would reach another server
connection. PREPARE and DEALLOCATE are not transactional: each (re)plan
starts with DEALLOCATE ALL, so an error anywhere leaves nothing to track
(the claim is the only statement the runner prepares).
"""

import time

from psycopg2.extensions import TRANSACTION_STATUS_IDLE

from . import queries

REPLAN_SECONDS = 10.0
# The claim's parameters with their SQL types, in the order of $1..$n.
CLAIM_PARAMS = (("names", "text[]"), ("lims", "int[]"), ("frees", "int[]"), ("ancs", "text[]"),
                ("limit", "int"), ("runner", "int"), ("key", "text"), ("groups", "text[]"))


class Plan:
    """Which form the next claim on one connection takes. The lock-free
    claim (autocommit) steers it; a claim inside a transaction (a limited
    group's) runs the current plan if there is one, else the plain
    statement."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.busy = False  # the last lock-free claim found jobs
        self.made = None  # clock time the plan was made; None: none to trust
        self._making = None

    def statement(self, cr):
        """The text of the next claim on `cr` (the claim's parameters)."""
        prepare, execute = queries.prepared("claim", CLAIM_PARAMS)
        now = self.clock()
        current = self.made is not None and now - self.made < REPLAN_SECONDS
        if cr.connection.info.transaction_status != TRANSACTION_STATUS_IDLE:
            return execute if current else queries.get("claim")
        if not self.busy:
            return queries.get("claim")
        if current:
            return execute
        self._making = now
        return f"DEALLOCATE ALL; {prepare}; {execute}"

    def ran(self, cr, found):
        """The claim succeeded and found jobs or not."""
        if self._making is not None:
            self.made, self._making = self._making, None
        if cr.connection.info.transaction_status == TRANSACTION_STATUS_IDLE:
            self.busy = found
            if not found:
                self.made = None  # the next spell plans on the table as it will be

    def failed(self):
        """The claim raised: what is prepared is unknown until the next plan."""
        self.busy, self.made, self._making = False, None, None


def attach(conn, clock=time.monotonic):
    """Claims on `conn` (a db.Connection) may run prepared from now on."""
    with conn.cursor() as cr:
        cr.execute("SET plan_cache_mode = force_generic_plan")
    conn.plan = Plan(clock)
    return conn.plan


def plan_of(cr):
    """The Plan of this cursor's connection, or None: the plain statement."""
    return getattr(cr.connection, "plan", None)
