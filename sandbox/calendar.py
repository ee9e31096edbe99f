"""Exchange sessions and holidays as the sandbox enforces them.

Hours (IST): NSE/BSE cash and F&O 09:15-15:30, MCX 09:00-23:30, Monday to Friday, except
the trading holidays below. The holiday lists are sandbox data taken from the exchanges'
published calendars; `SandboxServer.set_holidays()` replaces them in tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time

from sandbox.clock import IST

EQUITY_HOURS = (time(9, 15), time(15, 30))
COMMODITY_HOURS = (time(9, 0), time(23, 30))

HOURS = {
    "NSE": EQUITY_HOURS,
    "BSE": EQUITY_HOURS,
    "NFO": EQUITY_HOURS,
    "BFO": EQUITY_HOURS,
    "CDS": (time(9, 0), time(17, 0)),
    "BCD": (time(9, 0), time(17, 0)),
    "MCX": COMMODITY_HOURS,
}

# NSE trading holidays (equity and equity derivatives). MCX closes on most of them for the
# morning session only; the sandbox treats them as closed all day for every exchange.
NSE_HOLIDAYS = frozenset(
    date.fromisoformat(d)
    for d in (
        # 2025
        "2025-02-26", "2025-03-14", "2025-03-31", "2025-04-10", "2025-04-14", "2025-04-18",
        "2025-05-01", "2025-08-15", "2025-08-27", "2025-10-02", "2025-10-21", "2025-10-22",
        "2025-11-05", "2025-12-25",
        # 2026
        "2026-01-26", "2026-03-03", "2026-03-26", "2026-03-31", "2026-04-03", "2026-04-14",
        "2026-05-01", "2026-05-28", "2026-06-26", "2026-09-14", "2026-10-02", "2026-10-20",
        "2026-11-10", "2026-11-24", "2026-12-25",
    )
)  # fmt: skip


@dataclass
class Calendar:
    holidays: frozenset[date] = field(default_factory=lambda: NSE_HOLIDAYS)
    round_the_clock: bool = False

    def set_holidays(self, days: Iterable[date]) -> None:
        self.holidays = frozenset(days)

    def is_trading_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def is_open(self, exchange: str, when: datetime) -> bool:
        """Whether `exchange` accepts regular orders at `when` (always, round the clock)."""
        if self.round_the_clock:
            return True
        local = when.astimezone(IST)
        if not self.is_trading_day(local.date()):
            return False
        start, end = HOURS.get(exchange, EQUITY_HOURS)
        return start <= local.time() < end
