"""AliceBlue's non-order request budget: window maths and poll-interval planning (pure).

AliceBlue allows 1,800 non-order requests (order book, positions, quotes, …) per 15 minutes
per account, "reset every 15 minutes" (PROTOCOL.md §8). Orders are not counted.

**Window alignment (an assumption):** the broker does not say where its windows start. We
align them to wall-clock quarter hours in IST (xx:00, xx:15, xx:30, xx:45; IST is UTC+05:30,
so these are UTC quarter hours too). If the broker's windows are rolling or offset, counting
per aligned window can at worst let 2 * 1,800 requests fall inside one rolling 15 minutes
around a boundary; keep ``reserve`` headroom and treat a 429 as "window exhausted".

The persisted counter (``trading.RequestBudget``, one row per account and window, consumed by
a conditional UPDATE) lives in ``trading/brokers/aliceblue/budget.py``, whose
``window_start`` names the same instants (a test holds the two together); this module tells
pollers how often they can afford to poll.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from copytrade.lib.clock import IST

__all__ = [
    "REQUESTS_PER_WINDOW",
    "WINDOW",
    "poll_interval",
    "seconds_left",
    "window_end",
    "window_start",
]

REQUESTS_PER_WINDOW = 1800
WINDOW = timedelta(minutes=15)
_WINDOW_SECONDS = int(WINDOW.total_seconds())


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("budget windows need an aware datetime")
    return now.astimezone(IST)


def window_start(now: datetime) -> datetime:
    """The start of the budget window holding ``now``: the IST quarter hour at or before it."""
    t = _aware(now)
    return t.replace(minute=t.minute - t.minute % 15, second=0, microsecond=0)


def window_end(now: datetime) -> datetime:
    """The end (exclusive) of the window holding ``now``: the next quarter hour."""
    return window_start(now) + WINDOW


def seconds_left(now: datetime) -> float:
    """Seconds until the window holding ``now`` resets (0 < result ≤ 900)."""
    return (window_end(now) - _aware(now)).total_seconds()


def poll_interval(
    *,
    remaining: int,
    now: datetime,
    push_healthy: bool,
    floor: float,
    ceiling: float,
    reserve: int = 0,
    reset_slack: float = 1.0,
) -> float:
    """Seconds to wait before the next order-book poll.

    * While the order push is healthy, poll slowly (``ceiling``); while it is down, silent
      or unreadable, poll fast (``floor``).
    * Never faster than the budget allows: the requests left (``remaining - reserve``) are
      spread evenly over the time left in the window, so a poller alone can never run the
      window dry. ``reserve`` keeps requests back for callers that must not starve (order
      look-ups after an ambiguous send, quotes for market-order value checks). The budget
      wins over ``ceiling``: with little left, the interval may exceed it.
    * With nothing spendable left, wait for the window to reset (plus ``reset_slack``
      seconds, for clock skew against the broker).
    """
    if floor <= 0 or ceiling < floor:
        raise ValueError("need 0 < floor <= ceiling")
    if remaining < 0 or reserve < 0:
        raise ValueError("remaining and reserve must be non-negative")
    left = seconds_left(now)
    spendable = remaining - reserve
    if spendable <= 0:
        return left + reset_slack
    desired = ceiling if push_healthy else floor
    affordable = left / spendable
    return max(desired, affordable)
