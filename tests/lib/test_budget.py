"""Request-budget windows and poll planning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from copytrade.lib.budget import (
    REQUESTS_PER_WINDOW,
    poll_interval,
    seconds_left,
    window_end,
    window_start,
)
from copytrade.lib.clock import IST


def ist(hour, minute, second=0, micro=0):
    return datetime(2026, 3, 2, hour, minute, second, micro, tzinfo=IST)


@pytest.mark.parametrize(
    ("now", "start"),
    [
        (ist(10, 7, 33), ist(10, 0)),
        (ist(10, 15), ist(10, 15)),
        (ist(10, 14, 59, 999999), ist(10, 0)),
        (ist(23, 59, 59), ist(23, 45)),
        (ist(0, 0), ist(0, 0)),
    ],
)
def test_window_start_is_the_ist_quarter_hour(now, start):
    assert window_start(now) == start
    assert window_end(now) == start + timedelta(minutes=15)


def test_windows_align_with_utc_quarter_hours_too():
    now = datetime(2026, 3, 2, 4, 44, 59, tzinfo=UTC)  # 10:14:59 IST
    assert window_start(now) == ist(10, 0) == datetime(2026, 3, 2, 4, 30, tzinfo=UTC)


def test_seconds_left():
    assert seconds_left(ist(10, 14, 30)) == 30
    assert seconds_left(ist(10, 15)) == 900


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        window_start(datetime(2026, 3, 2, 10, 0))


def test_healthy_push_polls_slowly():
    assert (
        poll_interval(remaining=1800, now=ist(10, 0), push_healthy=True, floor=1, ceiling=30) == 30
    )


def test_push_down_polls_fast_when_affordable():
    interval = poll_interval(
        remaining=1800, now=ist(10, 0), push_healthy=False, floor=1, ceiling=30
    )
    assert interval == 1


def test_budget_stretches_the_interval():
    # 100 left with 10 minutes to go: no faster than every 6 s, even with the push down.
    interval = poll_interval(remaining=100, now=ist(10, 5), push_healthy=False, floor=1, ceiling=30)
    assert interval == pytest.approx(6.0)
    # And beyond the ceiling when the budget demands it.
    interval = poll_interval(remaining=10, now=ist(10, 5), push_healthy=True, floor=1, ceiling=30)
    assert interval == pytest.approx(60.0)


def test_reserve_is_kept_back():
    interval = poll_interval(
        remaining=300, now=ist(10, 5), push_healthy=False, floor=1, ceiling=30, reserve=200
    )
    assert interval == pytest.approx(6.0)


def test_exhausted_budget_waits_for_the_reset():
    interval = poll_interval(
        remaining=5, now=ist(10, 14), push_healthy=False, floor=1, ceiling=30, reserve=5
    )
    assert interval == pytest.approx(61.0)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        poll_interval(remaining=10, now=ist(10, 0), push_healthy=True, floor=0, ceiling=5)
    with pytest.raises(ValueError):
        poll_interval(remaining=10, now=ist(10, 0), push_healthy=True, floor=5, ceiling=1)
    with pytest.raises(ValueError):
        poll_interval(remaining=-1, now=ist(10, 0), push_healthy=True, floor=1, ceiling=5)


@given(
    offset=st.floats(min_value=0, max_value=899.9),
    remaining=st.integers(min_value=0, max_value=REQUESTS_PER_WINDOW),
    reserve=st.integers(min_value=0, max_value=300),
    push_healthy=st.booleans(),
    floor=st.floats(min_value=0.05, max_value=5),
)
def test_a_poller_following_the_plan_never_spends_the_reserve(
    offset, remaining, reserve, push_healthy, floor
):
    now = ist(10, 0) + timedelta(seconds=offset)
    end = window_end(now)
    polls = 0
    while True:
        interval = poll_interval(
            remaining=remaining - polls,
            now=now,
            push_healthy=push_healthy,
            floor=floor,
            ceiling=max(floor, 30),
            reserve=reserve,
        )
        assert interval > 0
        now += timedelta(seconds=interval)
        if now >= end:
            break
        polls += 1
    assert polls <= max(0, remaining - reserve)


def test_same_windows_as_the_persisted_budget():
    # The client's persisted counter (trading.brokers.aliceblue.budget) keys rows by its own
    # window_start; both must name the same instants or the poll plan counts the wrong window.
    from trading.brokers.aliceblue import budget as persisted

    start = ist(9, 0)
    for seconds in range(0, 3 * 3600, 7 * 60 + 13):
        now = start + timedelta(seconds=seconds)
        assert window_start(now) == persisted.window_start(now)
