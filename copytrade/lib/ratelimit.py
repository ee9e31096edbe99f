"""Per-key order rate governor: at most N orders in any one-second window, bursts spaced.

SEBI's retail-algo rules count orders per second per account; we govern per key, where the
copier's key is ``(broker_account_id, exchange)``, at ``settings.COPIER_ORDERS_PER_SECOND``
(default 8, under the exchanges' threshold of 10).

The rule (a sliding window, not a token bucket): for each key, the n-th send may not start
earlier than ``period + margin`` after the (n - limit)-th. So the first ``limit`` orders of a
burst go at once and the rest are spaced out, and **no window of ``period`` seconds, closed
at both ends, ever holds more than ``limit`` sends**. Requests are never rejected: a caller
is told when it may send and waits (FIFO per key, in the order ``acquire`` was called).

Keys are independent: a burst on one key never delays another, and no lock is held while
anyone waits. ``SendSchedule`` is the pure, O(1) scheduling core (a fixed ring of the last
``limit`` send times per key, no per-call allocation beyond the first use of a key);
``AsyncRateGovernor`` (for the copier's asyncio sender) and ``RateGovernor`` (threads) wrap
it with a sleep.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Hashable

__all__ = [
    "AsyncRateGovernor",
    "RateGovernor",
    "SendSchedule",
    "WaitTooLong",
    "default_rate",
]

#: Added to the window so that two sends exactly one period apart never share a window.
DEFAULT_MARGIN = 0.002


def default_rate() -> int:
    """``settings.COPIER_ORDERS_PER_SECOND`` (8 when Django settings are not configured)."""
    from django.conf import settings

    try:
        return int(getattr(settings, "COPIER_ORDERS_PER_SECOND", 8))
    except Exception:  # settings not configured (a plain script): the documented default
        return 8


class WaitTooLong(Exception):
    """Raised by ``acquire(max_wait=...)`` when the key's next slot is too far away.

    Nothing was reserved: the caller can expire the order instead of sending it late.
    """

    def __init__(self, key: Hashable, wait: float) -> None:
        super().__init__(f"next send slot for {key!r} is {wait:.3f}s away")
        self.key = key
        self.wait = wait


class _KeyState:
    __slots__ = ("index", "last", "ring")

    def __init__(self, limit: int) -> None:
        self.ring = [float("-inf")] * limit  # the last `limit` send times, oldest at index
        self.index = 0
        self.last = float("-inf")


class SendSchedule:
    """The pure scheduling logic: when may the next send for a key start?

    Times are plain floats on any monotonic clock the caller chooses (seconds). Thread-safe:
    ``reserve`` takes a short lock (no waiting happens inside it).
    """

    __slots__ = ("_gap", "_keys", "_lock", "limit", "period")

    def __init__(self, limit: int, period: float = 1.0, margin: float = DEFAULT_MARGIN) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive int, got {limit!r}")
        if period <= 0 or margin < 0:
            raise ValueError("period must be positive and margin non-negative")
        self.limit = limit
        self.period = period
        self._gap = period + margin
        self._keys: dict[Hashable, _KeyState] = {}
        self._lock = threading.Lock()

    def next_slot(self, key: Hashable, now: float) -> float:
        """The earliest time a send for ``key`` could start, without reserving it."""
        with self._lock:
            state = self._keys.get(key)
            if state is None:
                return now
            return max(now, state.ring[state.index] + self._gap, state.last)

    def reserve(self, key: Hashable, now: float, *, max_wait: float | None = None) -> float:
        """Reserve the next send slot for ``key`` and return its start time (≥ ``now``).

        Slots are handed out in call order and never decrease per key. With ``max_wait``,
        a slot more than that many seconds away is not reserved and ``WaitTooLong`` raised.
        """
        with self._lock:
            state = self._keys.get(key)
            if state is None:
                state = self._keys[key] = _KeyState(self.limit)
            index = state.index
            at = state.ring[index] + self._gap
            if at < now:
                at = now
            if at < state.last:
                at = state.last
            if max_wait is not None and at - now > max_wait:
                raise WaitTooLong(key, at - now)
            state.ring[index] = at
            state.index = index + 1 if index + 1 < self.limit else 0
            state.last = at
            return at

    def prune(self, now: float) -> int:
        """Forget keys idle for a whole window (their history can no longer delay anyone).
        Returns how many were dropped. Optional: memory is bounded by the number of keys."""
        with self._lock:
            idle = [key for key, state in self._keys.items() if state.last + self._gap <= now]
            for key in idle:
                del self._keys[key]
            return len(idle)

    def __len__(self) -> int:
        return len(self._keys)


class _Governor:
    """What both governors share: a schedule (their own, or one shared) and a clock."""

    def __init__(
        self,
        rate: int | None,
        period: float,
        margin: float,
        clock: Callable[[], float],
        schedule: SendSchedule | None,
    ) -> None:
        if schedule is None:  # (not `or`: an empty schedule has len 0 and is falsy)
            schedule = SendSchedule(default_rate() if rate is None else rate, period, margin)
        self.schedule = schedule
        self._clock = clock

    def _reserve(self, key: Hashable, max_wait: float | None) -> float:
        """Reserve the key's next slot; return how long to wait for it (≥ 0)."""
        now = self._clock()
        return max(0.0, self.schedule.reserve(key, now, max_wait=max_wait) - now)


class AsyncRateGovernor(_Governor):
    """``await governor.acquire(key)`` before each order send (asyncio).

    Returns the seconds waited. Clock and sleep are injectable so tests drive time. Pass
    one ``schedule`` to an async and a sync governor to govern the same keys from both.
    """

    def __init__(
        self,
        rate: int | None = None,
        *,
        period: float = 1.0,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        schedule: SendSchedule | None = None,
    ) -> None:
        super().__init__(rate, period, margin, clock, schedule)
        self._sleep = sleep

    async def acquire(self, key: Hashable, *, max_wait: float | None = None) -> float:
        delay = self._reserve(key, max_wait)
        if delay > 0:
            await self._sleep(delay)
        return delay


class RateGovernor(_Governor):
    """``governor.acquire(key)`` before each order send (threads); blocks only the caller."""

    def __init__(
        self,
        rate: int | None = None,
        *,
        period: float = 1.0,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        schedule: SendSchedule | None = None,
    ) -> None:
        super().__init__(rate, period, margin, clock, schedule)
        self._sleep = sleep

    def acquire(self, key: Hashable, *, max_wait: float | None = None) -> float:
        delay = self._reserve(key, max_wait)
        if delay > 0:
            self._sleep(delay)
        return delay
