"""Idle polling and reconnect delays, without a database."""

from jobrunner.backoff import Backoff
from jobrunner.metrics import Histogram


def test_delays_double_to_the_cap_and_reset():
    b = Backoff(0.1, 1.0, rng=lambda: 1.0)  # no jitter: the upper bound of each draw
    assert [round(b.next(), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert b.at_cap
    b.reset()
    assert not b.at_cap and b.next() == 0.1


def test_jitter_stays_within_half_to_full_and_never_below_the_floor():
    low = Backoff(0.1, 1.0, rng=lambda: 0.0)  # the lowest draw: half the delay
    assert [round(low.next(), 3) for _ in range(5)] == [0.1, 0.1, 0.2, 0.4, 0.5]


def test_histogram_buckets_are_cumulative():
    h = Histogram(buckets=(0.01, 0.1, 1.0))
    for value in (0.005, 0.05, 0.5, 5.0):
        h.observe(value)
    assert h.counts == [1, 2, 3] and h.total == 4 and round(h.sum, 3) == 5.555
