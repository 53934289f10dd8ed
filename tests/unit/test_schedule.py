"""Tick times of periodic definitions (jobrunner/schedule.py): what every
runner computes alone and must agree on, DST included."""

from datetime import datetime, timedelta

import pytest

from jobrunner import schedule
from jobrunner.errors import ConfigError

H = timedelta(hours=1)


def ticks(sched, start, end):
    """Every tick in (start, end], forward."""
    out, at = [], start
    while True:
        at = sched.next_after(at)
        if at is None or at > end:
            return out
        out.append(at)


def test_interval_ticks_are_start_plus_k_periods():
    s = schedule.build(interval_seconds=90, start=datetime(2026, 3, 29, 0, 0, 10))
    assert s.latest(datetime(2026, 3, 29)) is None  # before start
    assert s.latest(datetime(2026, 3, 29, 0, 0, 10)) == datetime(2026, 3, 29, 0, 0, 10)
    assert s.latest(datetime(2026, 3, 29, 0, 3, 9, 999)) == datetime(2026, 3, 29, 0, 1, 40)
    assert s.next_after(datetime(2026, 3, 29)) == datetime(2026, 3, 29, 0, 0, 10)  # start itself
    assert s.next_after(datetime(2026, 3, 29, 0, 1, 40)) == datetime(2026, 3, 29, 0, 3, 10)


def test_interval_ignores_dst():
    # UTC anchor: a 1-hour interval across Brussels' spring change stays 1 hour apart
    s = schedule.build(interval_seconds=3600, time_zone="Europe/Brussels",
                       start=datetime(2026, 3, 28, 22, 30))
    got = ticks(s, datetime(2026, 3, 28, 22), datetime(2026, 3, 29, 4))
    assert got == [datetime(2026, 3, 28, 22, 30) + k * H for k in range(6)]


def test_cron_daily_at_a_time_that_does_not_exist_runs_once_right_after_the_change():
    # 2026-03-29 Europe/Brussels: 02:00 CET -> 03:00 CEST, 02:30 does not exist
    s = schedule.build(cron="30 2 * * *", time_zone="Europe/Brussels", start=datetime(2026, 3, 1))
    got = ticks(s, datetime(2026, 3, 27), datetime(2026, 3, 31))
    assert got == [
        datetime(2026, 3, 27, 1, 30),  # 02:30 CET = 01:30 UTC
        datetime(2026, 3, 28, 1, 30),
        datetime(2026, 3, 29, 1, 0),  # 03:00 CEST, once: the skipped time runs at the change
        datetime(2026, 3, 30, 0, 30),  # 02:30 CEST = 00:30 UTC
    ]


def test_cron_hourly_across_the_spring_change_has_no_tick_twice_and_none_invented():
    s = schedule.build(cron="0 * * * *", time_zone="Europe/Brussels", start=datetime(2026, 3, 1))
    got = ticks(s, datetime(2026, 3, 28, 20), datetime(2026, 3, 29, 6))
    # local 02:00 does not exist: UTC ticks stay exactly one hour apart, none missing
    assert got == [datetime(2026, 3, 28, 21) + k * H for k in range(10)]


def test_cron_across_the_autumn_change_runs_the_repeated_time_once():
    # 2026-10-25: 03:00 CEST -> 02:00 CET, 02:30 happens twice
    s = schedule.build(cron="30 2 * * *", time_zone="Europe/Brussels", start=datetime(2026, 10, 1))
    got = ticks(s, datetime(2026, 10, 24), datetime(2026, 10, 27))
    assert got == [datetime(2026, 10, 24, 0, 30), datetime(2026, 10, 25, 0, 30),
                   datetime(2026, 10, 26, 1, 30)]
    hourly = schedule.build(cron="0 * * * *", time_zone="Europe/Brussels", start=datetime(2026, 10, 1))
    got = ticks(hourly, datetime(2026, 10, 24, 20), datetime(2026, 10, 25, 4))
    assert got == [datetime(2026, 10, 24, 21) + k * H for k in range(8)]  # a real hour each


@pytest.mark.parametrize("expr,start", [
    ("30 2 * * *", datetime(2026, 3, 27)), ("0 * * * *", datetime(2026, 3, 28, 20)),
    ("*/20 * * * *", datetime(2026, 10, 24, 22)), ("30 2 * * *", datetime(2026, 10, 23)),
])
def test_latest_agrees_with_forward_ticks_across_dst(expr, start):
    # latest(at) is how a late runner names a tick: it must be the forward tick
    # the others named, or two runners would fire two different ticks
    s = schedule.build(cron=expr, time_zone="Europe/Brussels", start=start)
    forward = ticks(s, start - timedelta(seconds=1), start + timedelta(days=3))
    assert len(set(forward)) == len(forward) and forward == sorted(forward)
    at = start
    while at < start + timedelta(days=3):
        expected = max((t for t in forward if t <= at), default=None)
        assert s.latest(at) == expected, at
        assert s.latest(at + timedelta(seconds=59, microseconds=5)) == expected
        at += timedelta(minutes=20)


def test_cron_before_start_has_no_latest_and_start_may_be_a_tick():
    s = schedule.build(cron="0 12 * * *", time_zone="UTC", start=datetime(2026, 5, 1, 12))
    assert s.latest(datetime(2026, 5, 1, 11, 59)) is None
    assert s.latest(datetime(2026, 5, 2, 11)) == datetime(2026, 5, 1, 12)
    assert s.next_after(datetime(2026, 4, 1)) == datetime(2026, 5, 1, 12)
    late = schedule.build(cron="0 12 * * *", time_zone="UTC", start=datetime(2026, 5, 1, 12, 1))
    assert late.latest(datetime(2026, 5, 2, 11)) is None


@pytest.mark.parametrize("kwargs,words", [
    ({"interval_seconds": 60, "cron": "* * * * *"}, ["both", "exactly one"]),
    ({}, ["neither", "exactly one"]),
    ({"interval_seconds": 0}, ["interval_seconds 0", "1 or more"]),
    ({"interval_seconds": 1.5}, ["interval_seconds 1.5", "whole number"]),
    ({"cron": "61 * * * *"}, ["'61 * * * *'", "fix it"]),
    ({"cron": "0 0 * *"}, ["'0 0 * *'", "5 fields"]),
    ({"cron": "0 0 30 2 *"}, ["'0 0 30 2 *'", "Bad day-of-month", "fix it"]),
    ({"cron": "0 0 */20 * 1L"}, ["'0 0 */20 * 1L'", "never matches"]),
    ({"cron": "0 0 * * *", "time_zone": "Europe/Brusels"}, ["'Europe/Brusels'", "IANA name"]),
    ({"interval_seconds": 60, "start": None}, ["start None", "first tick"]),
])
def test_bad_definitions_are_one_line_naming_the_value_and_the_fix(kwargs, words):
    kwargs = {"start": datetime(2026, 1, 1), **kwargs}
    with pytest.raises(ConfigError) as err:
        schedule.check(**kwargs)
    msg = str(err.value)
    assert "\n" not in msg and all(w in msg for w in words), msg
