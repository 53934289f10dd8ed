"""Side-by-side measurements; not run by the test command.

    python -m benchmarks all            # every scenario, rewrites benchmarks/RESULTS.md (~1 hour)
    python -m benchmarks all --quick    # the same with tiny sizes: checks the harness only
    python -m benchmarks dispatch       # jobs/s through the reference executor: ours vs OCA's runner
    python -m benchmarks cpu            # where the CPU goes at the limit: runner, executor, PostgreSQL
    python -m benchmarks peers          # the same drain with procrastinate and pgqueuer (own venv)
    python -m benchmarks ceiling        # our claims/s against pgbench running the same SQL
    python -m benchmarks claim_rate     # claims/s, 8 processes, batch 1/10/100
    python -m benchmarks notify_cost    # enqueue TPS: no trigger / stock trigger / our hint
    python -m benchmarks latency        # idle pickup latency: notify / poll / OCA
    python -m benchmarks idle           # statements/s and writes/s of an idle runner: ours / OCA
    python -m benchmarks bigtable       # claim latency beside 10k / 200k / 2M done rows
    python -m benchmarks limits         # unlimited channel beside a global limit (ratio)
"""
