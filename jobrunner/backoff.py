"""Jittered exponential backoff for idle polling and reconnects."""

import random


class Backoff:
    """Delays that double from `floor` to `cap`, each drawn uniformly from
    [d/2, d] so that many idle runners do not poll in lockstep."""

    def __init__(self, floor, cap, factor=2.0, rng=random.random):
        self.floor = floor
        self.cap = cap
        self.factor = factor
        self._rng = rng
        self._current = floor

    def reset(self):
        self._current = self.floor

    def next(self):
        delay = self._current
        self._current = min(self.cap, self._current * self.factor)
        return max(self.floor, delay * (0.5 + 0.5 * self._rng()))

    @property
    def at_cap(self):
        return self._current >= self.cap
