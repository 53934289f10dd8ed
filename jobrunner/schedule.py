"""When a periodic job's ticks fall, from its definition alone (so every
runner computes the same ticks without talking to the others).

An interval definition ticks at start + k * interval, in UTC (no DST
effect). A cron definition ticks where its expression matches in the
definition's time zone, from start on. Ticks are naive UTC datetimes, as
Odoo stores datetimes. Pure and Odoo-free: the addon's constraint calls
check() too.

Cron expressions are evaluated by cronsim (pure Python, no dependencies,
kept by healthchecks.io): it follows Debian cron, DST included (a time
skipped by the spring change runs right after it, a repeated hour does not
run twice; jobs more frequent than hourly run normally). croniter, the
usual choice, was nearly abandoned in 2024.
"""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from .errors import ConfigError

_SECOND = timedelta(seconds=1)
_TINY = timedelta(microseconds=1)
CAP = 10000  # count_between's bound
_DST_MARGIN = timedelta(hours=3)  # Debian cron treats clock changes under 3 h as DST


def check(interval_seconds=None, cron=None, time_zone=None, start=None):
    """The schedule of a definition, or ConfigError naming the bad value."""
    if (interval_seconds is None) == (not cron):
        raise ConfigError("a periodic job needs either interval_seconds or cron, not "
                          f"{'both' if cron else 'neither'}; set exactly one")
    if not isinstance(start, datetime):
        raise ConfigError(f"invalid periodic start {start!r}: set the datetime of the first tick")
    start = _naive_utc(start)
    if interval_seconds is not None:
        if isinstance(interval_seconds, bool) or not isinstance(interval_seconds, int) \
                or interval_seconds < 1:
            raise ConfigError(f"invalid interval_seconds {interval_seconds!r}: use a whole "
                              "number of seconds, 1 or more")
        return Interval(interval_seconds, start)
    try:
        zone = ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {time_zone!r}: use an IANA name such as "
                          "Europe/Brussels or UTC") from None
    if len(cron.split()) != 5:
        raise ConfigError(f"invalid cron expression {cron!r}: use 5 fields (minute hour "
                          "day-of-month month day-of-week), e.g. '30 2 * * *'")
    sched = Cron(cron, zone, start)
    try:
        next(CronSim(cron, _local(start, zone)))
    except CronSimError as exc:
        raise ConfigError(f"invalid cron expression {cron!r} ({exc}): fix it, e.g. "
                          "'30 2 * * *' for 02:30 every day") from None
    except StopIteration:
        raise ConfigError(f"cron expression {cron!r} never matches after its start: fix its "
                          "day and weekday fields") from None
    return sched


build = check  # the runner's name for it: it wants the schedule, not the verdict


def first_due(sched, last_tick):
    """When a definition whose latest decided tick is last_tick (None: never
    fired) is due: the tick after it, or its first tick >= start."""
    return sched.next_after(last_tick if last_tick is not None else sched.start - _TINY)


class Interval:
    def __init__(self, seconds, start):
        self.step = timedelta(seconds=seconds)
        self.start = start

    def latest(self, at):
        """The latest tick <= at (None before start)."""
        if at < self.start:
            return None
        return self.start + (at - self.start) // self.step * self.step

    def next_after(self, at):
        """The first tick > at."""
        if at < self.start:
            return self.start
        return self.start + ((at - self.start) // self.step + 1) * self.step

    def count_between(self, after, before, cap=CAP):
        """How many ticks fall strictly between after (None: before start) and before."""
        first = self.next_after(after or self.start - _TINY)
        return min(cap, max(0, -((first - before) // self.step)))

    def __repr__(self):
        return f"every {self.step.total_seconds():g}s from {self.start}"


class Cron:
    def __init__(self, expr, zone, start):
        self.expr = expr
        self.zone = zone
        self.start = start

    def latest(self, at):
        """The latest tick <= at and >= start (None if there is none)."""
        if at < self.start:
            return None
        at = at.replace(microsecond=0)
        # cronsim's reverse iteration starts strictly before its argument, and
        # next to a DST change it can skip a tick the forward one has: it only
        # finds a point shortly before the answer; forward ticks, the ones that
        # next_after names, decide
        near = self._first(CronSim(self.expr, _local(at + _SECOND, self.zone), reverse=True))
        found, it = None, CronSim(self.expr, _local(
            max(min(near or at, at) - _DST_MARGIN, self.start - _SECOND), self.zone))
        for tick in it:
            tick = _naive_utc(tick)
            if tick > at:
                break
            found = tick
        return found

    def next_after(self, at):
        """The first tick > at and >= start (None: none in 50 years)."""
        if at < self.start:
            at = self.start - _SECOND  # the start itself may be a tick
        # forward iteration starts strictly after its argument (whole seconds)
        return self._first(CronSim(self.expr, _local(at.replace(microsecond=0), self.zone)))

    def count_between(self, after, before, cap=CAP):
        """How many ticks fall strictly between after (None: before start) and
        before, counted up to cap (a long downtime of a frequent cron)."""
        n, at = 0, after or self.start - _TINY
        while n < cap:
            at = self.next_after(at)
            if at is None or at >= before:
                break
            n += 1
        return n

    @staticmethod
    def _first(it):
        try:
            return _naive_utc(next(it))
        except StopIteration:
            return None

    def __repr__(self):
        return f"cron {self.expr!r} in {self.zone.key} from {self.start}"


def _local(naive_utc, zone):
    return naive_utc.replace(tzinfo=timezone.utc).astimezone(zone)


def _naive_utc(dt):
    if dt.tzinfo is None:
        return dt
    return dt.astimezone(timezone.utc).replace(tzinfo=None)
