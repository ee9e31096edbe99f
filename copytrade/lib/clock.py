"""The product's clock: ``now()`` everywhere a decision depends on the time, overridable in tests.

The copier decides by the clock (staleness, market hours, end of day), so tests must be able
to run it at chosen times. Code calls ``clock.now()`` / ``clock.today_ist()`` /
``clock.monotonic()``; a test freezes them::

    with clock.frozen(datetime(2026, 3, 3, 10, 0, tzinfo=clock.IST)) as fake:
        ...              # clock.now() is 10:00 IST on 3 March 2026
        fake.advance(30) # and now 10:00:30; clock.monotonic() moved 30 s too

The override is process-wide (every thread sees it, including the copier's database worker
thread), guarded by a lock; nesting restores the outer clock on exit. It does not touch
Django's ``timezone.now()`` (``auto_now`` columns keep the real time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["IST", "FrozenClock", "frozen", "monotonic", "now", "now_ist", "today_ist"]

IST = ZoneInfo("Asia/Kolkata")

_lock = threading.Lock()
_override: FrozenClock | None = None


class FrozenClock:
    """A clock that only moves when told to. Both ``now()`` and ``monotonic()`` advance
    together, so staleness (wall clock) and rate spacing (monotonic) stay consistent."""

    def __init__(self, at: datetime, *, monotonic_start: float = 1_000.0) -> None:
        _require_aware(at)
        self._lock = threading.Lock()
        self._now = at
        self._mono = monotonic_start

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, delta: float | timedelta) -> None:
        """Move both clocks forward (seconds or a timedelta; never backwards)."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        if seconds < 0:
            raise ValueError("a clock never goes backwards")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += seconds

    def set(self, at: datetime) -> None:
        """Jump the wall clock to ``at`` (forward only); the monotonic clock follows."""
        _require_aware(at)
        with self._lock:
            seconds = (at - self._now).total_seconds()
            if seconds < 0:
                raise ValueError("a clock never goes backwards")
            self._now = at
            self._mono += seconds


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("the clock needs an aware datetime")


def now() -> datetime:
    """The current time, aware (UTC unless a test froze the clock at another zone)."""
    override = _override
    if override is not None:
        return override.now()
    return datetime.now(UTC)


def now_ist() -> datetime:
    """The current time in IST."""
    return now().astimezone(IST)


def today_ist() -> date:
    """Today's date in India: the trading day everything is keyed by."""
    return now_ist().date()


def monotonic() -> float:
    """Seconds from an arbitrary start that never go backwards (for spacing and timeouts)."""
    override = _override
    if override is not None:
        return override.monotonic()
    return time.monotonic()


@contextmanager
def frozen(at: datetime) -> Iterator[FrozenClock]:
    """Freeze ``now()`` and ``monotonic()`` at ``at`` for the block; yields the FrozenClock."""
    global _override
    fake = FrozenClock(at)
    with _lock:
        previous = _override
        _override = fake
    try:
        yield fake
    finally:
        with _lock:
            _override = previous
