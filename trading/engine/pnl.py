"""Today's P&L per broker account, for the max-daily-loss entry check.

Where it comes from: the account's own broker position book (`positions()`), fetched by the
copier within the account's request budget every ``COPIER_PNL_REFRESH_SECONDS`` (default
60) while the account has a ready session — realised P&L plus unrealised P&L, the latter
computed from the last traded price and the net average where the API does not report it
(the Open API). The whole account counts, not only copied positions: a follower's own
trades lose money too. The check reads the stored `DailyPnl` row inside the decision
transaction (no network there); until the first fetch of the day it has no figure and the
check passes, saying so in the sizing record (`CopyTrade.daily_pnl` is empty).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.conf import settings

from copytrade.lib import clock
from trading.brokers.aliceblue.types import Position
from trading.models import DailyPnl


def refresh_seconds() -> float:
    return float(getattr(settings, "COPIER_PNL_REFRESH_SECONDS", 60))


def from_positions(positions: Iterable[Position]) -> tuple[Decimal, Decimal]:
    """(realised, unrealised) over every position row of the day."""
    realised = Decimal(0)
    unrealised = Decimal(0)
    for p in positions:
        realised += p.realised_pnl or Decimal(0)
        if p.unrealised_pnl is not None:
            unrealised += p.unrealised_pnl
        elif p.net_quantity and p.ltp is not None and p.net_average is not None:
            unrealised += (p.ltp - p.net_average) * p.net_quantity
    return realised, unrealised


def store(
    account_id: int, positions: Iterable[Position], *, now: datetime | None = None
) -> DailyPnl:
    """Upsert today's P&L of one account from its position book."""
    now = now or clock.now()
    realised, unrealised = from_positions(positions)
    row, _ = DailyPnl.objects.update_or_create(
        account_id=account_id,
        trading_day=clock.today_ist(),
        defaults={
            "realised": realised,
            "unrealised": unrealised,
            "as_of": now,
            "source": "positions",
        },
    )
    return row
