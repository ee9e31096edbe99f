"""Instrument selectors: the contract master as the rest of the product reads it.

by_token("NSE", "1594")            → Instrument | None
by_trading_symbol("NFO", "NIFTY26SEP24F")
for_underlying("NFO", "NIFTY")     → queryset ordered by expiry, option type, strike
search("INF", exchange="NSE")      → a short list for pickers
mcx_lot_table()                    → the board lots the client needs for MCX lots
"""

from __future__ import annotations

import threading
import time
from datetime import date

from django.db.models import QuerySet

from trading.brokers.aliceblue.mapping import StaticLots
from trading.models import Instrument


def by_token(exchange: str, token: str) -> Instrument | None:
    return Instrument.objects.filter(exchange=exchange.upper(), token=str(token)).first()


def by_trading_symbol(exchange: str, trading_symbol: str) -> Instrument | None:
    return (
        Instrument.objects.filter(exchange=exchange.upper(), trading_symbol=trading_symbol)
        .order_by("-refreshed_on", "token")
        .first()
    )


def for_underlying(exchange: str, symbol: str) -> QuerySet[Instrument]:
    return Instrument.objects.filter(exchange=exchange.upper(), symbol=symbol.upper()).order_by(
        "expiry", "option_type", "strike", "trading_symbol"
    )


def search(query: str, *, exchange: str | None = None, limit: int = 20) -> list[Instrument]:
    query = query.strip().upper()
    if not query:
        return []
    rows = Instrument.objects.filter(trading_symbol__istartswith=query)
    if exchange:
        rows = rows.filter(exchange=exchange.upper())
    return list(rows.order_by("exchange", "expiry", "trading_symbol")[:limit])


def refreshed_on(exchange: str) -> date | None:
    row = (
        Instrument.objects.filter(exchange=exchange.upper())
        .order_by("-refreshed_on")
        .values_list("refreshed_on", flat=True)
        .first()
    )
    return row


# --- MCX board lots for the client (cached per process for a few minutes) ---------------------
# Another process (the daily `refresh_instruments`) may change the table, so the cache is
# short-lived; `store()` in this process drops it at once.
_CACHE_SECONDS = 300.0
_lock = threading.Lock()
_cached: tuple[float, StaticLots] | None = None


def mcx_lot_table() -> StaticLots:
    """{(MCX, token) and (MCX, trading symbol): units per lot}. Synchronous (database)."""
    global _cached
    with _lock:
        if _cached is not None and time.monotonic() - _cached[0] < _CACHE_SECONDS:
            return _cached[1]
    lots: dict[tuple[str, str], int] = {}
    for token, tsym, board in Instrument.objects.filter(exchange="MCX").values_list(
        "token", "trading_symbol", "board_lot_quantity"
    ):
        lots[("MCX", token)] = board
        lots[("MCX", tsym)] = board
    table = StaticLots(lots)
    with _lock:
        _cached = (time.monotonic(), table)
    return table


def forget_lot_table() -> None:
    global _cached
    with _lock:
        _cached = None
