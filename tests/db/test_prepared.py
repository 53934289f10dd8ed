"""The claim prepared with a generic plan (notify mode), and when it is
planned again (jobrunner/prepared.py)."""

import pytest

from jobrunner import claim, prepared

from .test_claim import _plan_nodes


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def conn(qdb):
    conn = qdb.connect()
    yield conn
    conn.close()


def _statements(cr):
    cr.execute("SELECT name, generic_plans, custom_plans FROM pg_prepared_statements")
    return cr.fetchall()


def _claim(cr, limit=1):
    return claim.claim_channels(cr, 1, limit)[0]


def _seq_scans(cr):
    """Seq scans of queue_job in the plan of the prepared claim, as it would run now."""
    _prepare, execute = prepared.queries.prepared("claim", prepared.CLAIM_PARAMS)
    params = {"names": ["root"], "lims": [1], "frees": [1], "ancs": ["1"], "limit": 1,
              "runner": 1, "key": "k", "groups": []}
    cr.execute("EXPLAIN (FORMAT JSON) " + execute, params)
    plan = cr.fetchone()[0][0]["Plan"]
    return [n for n in _plan_nodes(plan)
            if n.get("Relation Name") == "queue_job" and n["Node Type"] == "Seq Scan"]


def test_a_busy_spell_runs_one_generic_plan_and_an_idle_runner_the_plain_claim(qdb, conn):
    """PostgreSQL's default plan_cache_mode (auto) keeps re-planning the
    claim, whose custom plans look cheap, and planning costs 4-5x its
    execution: a spell of work runs one generic plan, planned at its start."""
    qdb.insert_jobs(30)
    prepared.attach(conn)
    with conn.cursor() as cr:
        got = [_claim(cr) for _ in range(11)] + [_claim(cr, 100)]
        # the first claim ran plain (nothing known yet), the second planned
        assert _statements(cr) == [("qjsl_claim", 11, 0)]
        assert sum(len(jobs) for jobs in got) == 30
        assert _claim(cr) == []  # by the plan: it ends the spell
        assert _claim(cr) == [] and _claim(cr) == []  # idle polls: the plain claim
        assert _statements(cr) == [("qjsl_claim", 12, 0)]
        # a new spell plans again, on the table as it is then
        qdb.insert_jobs(5)
        assert len(_claim(cr)) == 1 and _statements(cr) == [("qjsl_claim", 12, 0)]
        assert len(_claim(cr, 4)) == 4 and _statements(cr) == [("qjsl_claim", 1, 0)]


def test_a_plan_made_on_a_small_queue_is_made_again_within_REPLAN_SECONDS(qdb, conn):
    """A generic plan keeps the table's size of when it was made: made on a
    near-empty queue it seq-scans queue_job (all of it, done jobs too) once
    the queue has grown, until an ANALYZE; a busy runner makes it again
    every REPLAN_SECONDS."""
    qdb.execute("ALTER TABLE queue_job SET (autovacuum_enabled = false)")  # no ANALYZE meanwhile
    qdb.insert_jobs(3)
    qdb.execute("VACUUM ANALYZE queue_job")
    clock = Clock()
    plan = prepared.attach(conn, clock)
    plan.busy = True
    with conn.cursor() as cr:
        assert len(_claim(cr)) == 1
        qdb.insert_jobs(20000)
        assert _seq_scans(cr)  # the hazard the rule bounds (EXPLAIN runs the plan too)
        clock.now = prepared.REPLAN_SECONDS - 0.1
        assert len(_claim(cr)) == 1 and _statements(cr) == [("qjsl_claim", 3, 0)]
        clock.now = prepared.REPLAN_SECONDS + 0.1
        assert len(_claim(cr)) == 1 and _statements(cr) == [("qjsl_claim", 1, 0)]
        assert _seq_scans(cr) == []


def test_a_failed_claim_leaves_the_next_ones_working(qdb, conn):
    """PREPARE and DEALLOCATE outlive a failed statement: the next plan
    starts from a clean slate, whatever the failure left behind."""
    qdb.insert_jobs(10)
    prepared.attach(conn).busy = True
    with conn.cursor() as cr:
        with pytest.raises(claim.db.DatabaseError, match="integer"):
            claim.claim_channels(cr, "x", 1)  # planned, then EXECUTE fails
        assert len(_claim(cr)) == 1  # plain
        assert len(_claim(cr)) == 1 and _statements(cr) == [("qjsl_claim", 1, 0)]
        with pytest.raises(claim.db.DatabaseError, match="integer"):
            claim.claim_channels(cr, "x", 1)  # the current plan's EXECUTE fails
        assert len(_claim(cr)) == 1  # plain
        assert len(_claim(cr)) == 1 and _statements(cr) == [("qjsl_claim", 1, 0)]
    assert qdb.scalar("SELECT count(*) FROM queue_job WHERE state = 'enqueued'") == 4


def test_a_claim_in_a_transaction_runs_the_current_plan_or_the_plain_claim(qdb, conn):
    """A limited group's claim runs in a transaction: it never plans (the
    lock-free claim steers), and its findings do not end a spell."""
    qdb.insert_jobs(10)
    plan = prepared.attach(conn)
    plan.busy = True
    with conn.cursor() as cr:
        cr.execute("BEGIN")
        assert len(_claim(cr)) == 1 and _statements(cr) == []  # plain
        cr.execute("COMMIT")
        assert len(_claim(cr)) == 1 and _statements(cr) == [("qjsl_claim", 1, 0)]
        cr.execute("BEGIN")
        assert _claim(cr, 0) == [] and len(_claim(cr)) == 1
        cr.execute("UPDATE queue_job SET state = 'done' WHERE state = 'pending'")
        assert _claim(cr) == []  # found nothing, in a transaction
        assert _statements(cr) == [("qjsl_claim", 3, 0)]
        cr.execute("ROLLBACK")
        assert plan.busy and len(_claim(cr)) == 1 and _statements(cr) == [("qjsl_claim", 4, 0)]
