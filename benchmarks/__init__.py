"""Side-by-side measurements; not run by the test command.

    python -m benchmarks claim_rate     # claims/s, 8 processes, batch 1/10/100
    python -m benchmarks notify_cost    # enqueue TPS: no trigger / stock trigger / our hint
    python -m benchmarks limits         # unlimited channel beside a global limit (ratio)
"""
