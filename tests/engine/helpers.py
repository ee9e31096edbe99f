"""Helpers the engine and lifecycle tests share: an order-book row to feed detection's pure
core, waiting on the database while the copier's loops run, and a follower session the
copier cannot renew."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import connections

from accounts.models import BrokerAccount
from copytrade.lib import clock
from trading.brokers import sessions
from trading.brokers.aliceblue.types import OrderRow, OrderStatus, OrderType, Product, Side


def order_row(**overrides: Any) -> OrderRow:
    """An open LIMIT BUY of 10 INFY-EQ at 1500 (MIS, order time now), as the order book
    parses it; `overrides` replace any field."""
    values: dict[str, Any] = dict(
        broker_order_id="1",
        status=OrderStatus.OPEN,
        raw_status="open",
        exchange="NSE",
        token="1594",
        trading_symbol="INFY-EQ",
        side=Side.BUY,
        quantity=10,
        filled_quantity=0,
        pending_quantity=10,
        cancelled_quantity=0,
        price=Decimal("1500"),
        trigger_price=None,
        average_price=None,
        order_type=OrderType.LIMIT,
        product=Product.MIS,
        complexity=None,
        validity=None,
        tag="",
        rejection_reason="",
        order_time=clock.now(),
        exchange_time=None,
        exchange_order_id="",
    )
    values.update(overrides)
    return OrderRow(**values)


def closing(predicate: Callable[[], Any]) -> Callable[[], Any]:
    """Run a database predicate in a worker thread and close that thread's connection."""

    def run() -> Any:
        try:
            return predicate()
        finally:
            connections.close_all()

    return run


async def until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll a database predicate from a worker thread while the copier's loops run; its first
    truthy value, or AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(closing(predicate))
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def expire_oauth_session(account: BrokerAccount, reason: str = "test") -> None:
    """The account becomes an AliceBlue-login (OAuth) account whose session has ended: the
    copier cannot log it in again, only its owner can."""
    BrokerAccount.objects.filter(pk=account.pk).update(login_method="oauth")
    sessions.mark_expired(account=account, reason=reason)
