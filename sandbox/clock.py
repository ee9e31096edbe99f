"""The sandbox's clock: real time plus an offset that tests (and only tests) move.

Everything in the sandbox that depends on "now" — the IST trading day, the daily-login rule,
session expiry, exchange hours, order timestamps — reads this clock, so a test can put the
sandbox at 10:00 IST on a Monday regardless of when CI runs.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")


class Clock:
    """Wall-clock time shifted by an adjustable offset; thread-safe."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The sandbox's current time, aware, in IST."""
        with self._lock:
            offset = self._offset
        return (datetime.now(UTC) + offset).astimezone(IST)

    def today(self) -> date:
        """The IST calendar day: AliceBlue's trading day for sessions and daily logins."""
        return self.now().date()

    def set(self, when: datetime) -> None:
        """Make `now()` return `when` from this instant on (time keeps flowing)."""
        if when.tzinfo is None:
            raise ValueError("set_clock needs an aware datetime")
        with self._lock:
            self._offset = when - datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)

    def reset(self) -> None:
        with self._lock:
            self._offset = timedelta(0)

    @property
    def offset_seconds(self) -> float:
        with self._lock:
            return self._offset.total_seconds()
