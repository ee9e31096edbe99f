"""The per-key rate governor: bursts spaced, no window over the limit, keys independent."""

from __future__ import annotations

import asyncio
import threading
import time
from bisect import bisect_right

import pytest
from hypothesis import given
from hypothesis import strategies as st

from copytrade.lib.ratelimit import (
    AsyncRateGovernor,
    RateGovernor,
    SendSchedule,
    WaitTooLong,
    default_rate,
)


def max_in_closed_window(times, period):
    """The most sends in any window [a, a + period] (closed at both ends)."""
    ordered = sorted(times)
    return max(bisect_right(ordered, t + period) - i for i, t in enumerate(ordered))


# --- The pure schedule -------------------------------------------------------------------------
def test_burst_of_50_legs_never_exceeds_8_in_any_second():
    schedule = SendSchedule(8)
    slots = [schedule.reserve(("acct-1", "NFO"), 0.0) for _ in range(50)]
    assert slots[:8] == [0.0] * 8  # the first eight go at once
    assert max_in_closed_window(slots, 1.0) == 8
    assert slots == sorted(slots)
    # 50 legs in groups of 8: the last group starts 6 windows later, no later than needed.
    assert slots[-1] == pytest.approx(6 * (1.0 + 0.002))


def test_other_keys_are_not_delayed_by_a_burst():
    schedule = SendSchedule(8)
    for _ in range(50):
        schedule.reserve(("acct-1", "NFO"), 0.0)
    assert schedule.reserve(("acct-2", "NFO"), 0.0) == 0.0
    assert schedule.reserve(("acct-1", "NSE"), 0.0) == 0.0  # same account, other exchange


def test_slots_free_up_as_time_passes():
    schedule = SendSchedule(2)
    assert schedule.reserve("k", 0.0) == 0.0
    assert schedule.reserve("k", 0.1) == 0.1
    assert schedule.reserve("k", 0.2) == pytest.approx(1.002)
    assert schedule.reserve("k", 5.0) == 5.0  # long idle: immediate again


def test_slots_never_go_backwards_for_a_key():
    schedule = SendSchedule(3)
    a = schedule.reserve("k", 10.0)
    b = schedule.reserve("k", 9.0)  # a caller that read the clock earlier but came later
    assert b >= a


def test_max_wait_refuses_without_reserving():
    schedule = SendSchedule(1)
    schedule.reserve("k", 0.0)
    before = schedule.next_slot("k", 0.0)
    with pytest.raises(WaitTooLong) as info:
        schedule.reserve("k", 0.0, max_wait=0.5)
    assert info.value.wait == pytest.approx(1.002)
    assert schedule.next_slot("k", 0.0) == before
    assert schedule.reserve("k", 0.0, max_wait=2.0) == pytest.approx(1.002)


def test_prune_forgets_idle_keys_only():
    schedule = SendSchedule(2)
    schedule.reserve("old", 0.0)
    schedule.reserve("new", 9.5)
    assert schedule.prune(10.0) == 1
    assert len(schedule) == 1


@pytest.mark.parametrize("limit", [0, -1, True, 2.5])
def test_bad_limits_are_refused(limit):
    with pytest.raises(ValueError):
        SendSchedule(limit)


@given(
    limit=st.integers(min_value=1, max_value=10),
    requests=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(min_value=0, max_value=0.5)),
        min_size=1,
        max_size=120,
    ),
)
def test_no_window_ever_holds_more_than_the_limit_and_no_needless_wait(limit, requests):
    schedule = SendSchedule(limit, period=1.0, margin=0.002)
    now = 0.0
    by_key: dict[str, list[float]] = {}
    for key, step in requests:
        now += step
        slot = schedule.reserve(key, now)
        assert slot >= now
        history = by_key.setdefault(key, [])
        # Work-conserving: a wait happens only because of the key's own recent sends.
        if slot > now:
            assert len(history) >= limit
            assert slot == pytest.approx(max(history[-limit] + 1.002, history[-1]))
        history.append(slot)
    for slots in by_key.values():
        assert slots == sorted(slots)
        assert max_in_closed_window(slots, 1.0) <= limit


# --- Async governor ----------------------------------------------------------------------------
class VirtualTime:
    """Drives the governors without real waiting: sleeps are recorded, not slept."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def async_sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_async_governor_spaces_a_burst_and_leaves_other_keys_alone():
    virtual = VirtualTime()
    governor = AsyncRateGovernor(8, clock=virtual.clock, sleep=virtual.async_sleep)

    async def run():
        burst = [governor.acquire((1, "NFO")) for _ in range(50)]
        others = [governor.acquire((2, "NFO")) for _ in range(5)]
        return await asyncio.gather(*burst), await asyncio.gather(*others)

    burst_waits, other_waits = asyncio.run(run())
    assert max_in_closed_window(burst_waits, 1.0) == 8  # sent at now + wait
    assert burst_waits.count(0.0) == 8
    assert other_waits == [0.0] * 5
    assert len(virtual.slept) == 42


def test_async_governor_really_waits():
    # A real-time check with a short period: 50 legs at 8 per 20 ms.
    governor = AsyncRateGovernor(8, period=0.02, margin=0.001)
    sent: list[float] = []

    async def leg():
        await governor.acquire("k")
        sent.append(time.monotonic())

    async def run():
        start = time.monotonic()
        await asyncio.gather(*(leg() for _ in range(50)))
        return start

    start = asyncio.run(run())
    elapsed = sent[-1] - start
    assert elapsed >= 6 * 0.021 - 0.001  # the spacing really happened
    assert elapsed < 2.0
    # Wake-ups are never early: the i-th send happens no sooner than the i-th permitted slot
    # (8 per 20 ms). Event-loop lag on a busy machine can only delay a send, so this holds
    # however loaded the machine is, unlike counting real send times per window.
    for i, sent_at in enumerate(sorted(sent)):
        assert sent_at >= start + (i // 8) * 0.02 - 0.0005, (i, sent_at - start)


def test_async_max_wait_raises():
    virtual = VirtualTime()
    governor = AsyncRateGovernor(1, clock=virtual.clock, sleep=virtual.async_sleep)

    async def run():
        await governor.acquire("k")
        await governor.acquire("k", max_wait=0.1)

    with pytest.raises(WaitTooLong):
        asyncio.run(run())


def test_default_rate_comes_from_settings(settings):
    settings.COPIER_ORDERS_PER_SECOND = 5
    assert default_rate() == 5
    assert AsyncRateGovernor().schedule.limit == 5
    assert RateGovernor().schedule.limit == 5


# --- Sync governor -----------------------------------------------------------------------------
def test_sync_governor_is_thread_safe_and_spaces_a_burst():
    virtual = VirtualTime()
    governor = RateGovernor(8, clock=virtual.clock, sleep=virtual.sleep)
    waits: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(10):
            wait = governor.acquire(("acct", "NFO"))
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(waits) == 50
    assert max_in_closed_window(waits, 1.0) == 8
    assert governor.acquire(("other", "NFO")) == 0.0


def test_sync_governor_blocks_only_the_busy_key():
    governor = RateGovernor(2, period=0.05, margin=0.001)
    for _ in range(2):
        governor.acquire("busy")
    started = time.monotonic()
    governor.acquire("idle")
    assert time.monotonic() - started < 0.01
    governor.acquire("busy")
    assert time.monotonic() - started >= 0.04


def test_a_shared_schedule_governs_the_key_across_async_and_sync_senders():
    virtual = VirtualTime()
    shared = SendSchedule(2)
    sync = RateGovernor(clock=virtual.clock, sleep=virtual.sleep, schedule=shared)
    agov = AsyncRateGovernor(clock=virtual.clock, sleep=virtual.async_sleep, schedule=shared)
    assert sync.acquire("k") == 0.0
    assert sync.acquire("k") == 0.0
    assert asyncio.run(agov.acquire("k")) == pytest.approx(1.002)
