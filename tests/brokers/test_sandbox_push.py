"""The order-update push feed against the sandbox's order-notify websocket: typed order
events, reconnect with a fresh token after a dropped socket, the silent state, push not
enabled, an expired session, and the order-notify dialects. Unknown frames are kept raw."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from copytrade.lib.secret import Secret
from tests.brokers.conftest import login, mcx_lots, sandbox_endpoints
from trading.brokers.aliceblue.client import AsyncAliceBlueClient
from trading.brokers.aliceblue.protocol import Endpoints, OpenApi
from trading.brokers.aliceblue.push import (
    FeedState,
    FeedStateChange,
    OrderEvent,
    OrderFeed,
    UnknownFrame,
    parse_order_frame,
)
from trading.brokers.aliceblue.types import Generation, OrderStatus, Side

GENERATIONS = pytest.mark.parametrize(
    "generation", [Generation.OPEN_API, Generation.ANT], ids=["open", "ant"]
)


def run_feed(
    sbx: Any,
    session: Any,
    script: Callable[[list[Any]], Any],
    *,
    until: Callable[[list[Any]], bool],
    timeout: float = 15.0,
    **feed_kwargs: Any,
) -> tuple[list[Any], OrderFeed]:
    """Run a feed, call `script(events)` in a thread once connected, collect until `until`."""
    events: list[Any] = []

    async def main() -> OrderFeed:
        client = AsyncAliceBlueClient(
            session,
            endpoints=sandbox_endpoints(sbx),
            lots=mcx_lots(sbx),
            budget=None,
            on_session_expired=None,
        )
        feed = OrderFeed(client, backoff_initial=0.1, backoff_max=0.5, **feed_kwargs)

        async def consume() -> None:
            async for event in feed.events():
                events.append(event)

        consumer = asyncio.create_task(consume())
        scripted = False
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and not consumer.done() and not until(events):
                if not scripted and feed.state == FeedState.CONNECTED:
                    scripted = True
                    await asyncio.to_thread(script, events)
                await asyncio.sleep(0.05)
        finally:
            feed.stop()
            await asyncio.wait_for(consumer, timeout=5)
            await client.close()
        return feed

    feed = asyncio.run(main())
    return events, feed


def states(events: list[Any]) -> list[FeedState]:
    return [e.state for e in events if isinstance(e, FeedStateChange)]


def orders(events: list[Any]) -> list[OrderEvent]:
    return [e for e in events if isinstance(e, OrderEvent)]


@pytest.fixture
def account(sbx):
    return sbx.create_account(funds="1000000", daily_login=True)


@GENERATIONS
def test_order_changes_arrive_as_typed_events(sbx, account, generation):
    session = login(sbx, generation, account.client_id)

    def script(_events):
        sbx.place_order(account.client_id, "NSE", "INFY-EQ", "BUY", 3, tag="push-1")

    events, _ = run_feed(
        sbx,
        session,
        script,
        until=lambda ev: any(
            e.row.status is OrderStatus.COMPLETE for e in orders(ev) if e.row.tag == "push-1"
        ),
    )
    assert states(events)[:2] == [FeedState.CONNECTING, FeedState.CONNECTED]
    done = [e for e in orders(events) if e.row.status is OrderStatus.COMPLETE]
    assert done and done[-1].row.tag == "push-1"
    assert done[-1].row.side is Side.BUY and done[-1].row.filled_quantity == 3
    assert done[-1].row.average_price is not None
    assert all(not isinstance(e, UnknownFrame) for e in events), events


@GENERATIONS
def test_a_dropped_socket_reconnects_with_a_fresh_token(sbx, account, generation):
    session = login(sbx, generation, account.client_id)
    events, feed = run_feed(
        sbx,
        session,
        lambda _ev: sbx.drop_websockets(account.client_id),
        until=lambda ev: states(ev).count(FeedState.CONNECTED) >= 2,
    )
    seen = states(events)
    assert FeedState.DISCONNECTED in seen
    assert seen.count(FeedState.CONNECTED) >= 2 and feed.connects >= 2


def test_a_silent_feed_is_reported_and_recovers(sbx, account):
    session = login(sbx, Generation.OPEN_API, account.client_id)

    def script(_events):
        sbx.set_faults(account.client_id, push_silent=True)

    events, _ = run_feed(
        sbx,
        session,
        script,
        until=lambda ev: FeedState.SILENT in states(ev),
        silent_after=1.0,
    )
    assert FeedState.SILENT in states(events)


@GENERATIONS
def test_push_not_enabled_ends_the_feed_once(sbx, account, generation):
    sbx.set_faults(account.client_id, push_disabled=True)
    session = login(sbx, generation, account.client_id)
    events, _ = run_feed(sbx, session, lambda _ev: None, until=lambda ev: False, timeout=5)
    assert states(events) == [FeedState.CONNECTING, FeedState.PUSH_NOT_ENABLED]


def test_an_expired_session_ends_the_feed(sbx, account):
    session = login(sbx, Generation.OPEN_API, account.client_id)

    def script(_events):
        sbx.expire_sessions(account.client_id)
        sbx.drop_websockets(account.client_id)

    events, _ = run_feed(
        sbx, session, script, until=lambda ev: FeedState.SESSION_EXPIRED in states(ev)
    )
    assert states(events)[-1] == FeedState.SESSION_EXPIRED


@pytest.mark.parametrize(
    ("dialect", "value", "action", "expected"),
    [
        ("om_cancelled", "CANCELED", "cancel", OrderStatus.CANCELLED),
        ("om_cancelled", "CANCELLED", "cancel", OrderStatus.CANCELLED),
        ("om_trigger_pending", "TRIGGER_PENDING", "stop", OrderStatus.TRIGGER_PENDING),
        ("om_trigger_pending", "TRIGGER PENDING", "stop", OrderStatus.TRIGGER_PENDING),
    ],
)
def test_order_notify_dialects(sbx, account, dialect, value, action, expected):
    sbx.set_dialect(**{dialect: value})
    session = login(sbx, Generation.ANT, account.client_id)

    def script(_events):
        if action == "cancel":
            order = sbx.place_order(
                account.client_id, "NSE", "INFY-EQ", "BUY", 1, order_type="LIMIT", price="100"
            )
            sbx.cancel_order(account.client_id, order["order_no"])
        else:
            sbx.place_order(
                account.client_id, "NSE", "INFY-EQ", "SELL", 1, order_type="SLM", trigger="100"
            )

    events, _ = run_feed(
        sbx, session, script, until=lambda ev: any(e.row.status is expected for e in orders(ev))
    )
    hits = [e for e in orders(events) if e.row.status is expected]
    assert hits and hits[0].row.raw_status == value


def test_unknown_and_broken_frames_are_kept_raw():
    endpoints = Endpoints("http://h", "http://h", "http://h/", "ws://h/a", "ws://h/b")
    client = AsyncAliceBlueClient.__new__(AsyncAliceBlueClient)
    client.api = OpenApi(endpoints=endpoints, client_id="AB1", session=Secret("x" * 20))
    feed = OrderFeed.__new__(OrderFeed)
    feed.client = client
    for data in ('{"t": "zz", "x": 1}', "not json", '{"t": "om"}', "[1, 2]"):
        frame = feed._frame(data)
        assert isinstance(frame, UnknownFrame) and frame.raw == data


def test_the_documented_om_sample_parses():
    api = OpenApi(
        endpoints=Endpoints("http://h", "http://h", "http://h/", "ws://h/a", "ws://h/b"),
        client_id="1332014",
        session=Secret("x" * 20),
    )
    event = parse_order_frame(
        api,
        {
            "t": "om",
            "norenordno": "24070600000744",
            "uid": "1332014",
            "actid": "1332014",
            "exch": "NSE",
            "tsym": "MRF-EQ",
            "trantype": "B",
            "qty": "1",
            "prc": "0.00",
            "prctyp": "MKT",
            "pcode": "I",
            "ret": "DAY",
            "dscqty": "0",
            "remarks": "",
            "status": "REJECTED",
            "reporttype": "Rejected",
            "rejreason": "RED:Margin Shortfall:INR 28,030.64 Available:INR 29.36",
        },
    )
    row = event.row
    assert (row.broker_order_id, row.status, row.side) == (
        "24070600000744",
        OrderStatus.REJECTED,
        Side.BUY,
    )
    assert row.product.value == "MIS" and row.order_type.value == "MARKET"
    assert row.rejection_reason.startswith("RED:Margin Shortfall")
    assert event.report_type == "rejected"


def test_a_long_silence_reconnects_with_a_fresh_token(sbx, account):
    session = login(sbx, Generation.ANT, account.client_id)

    def script(events):
        sbx.set_faults(account.client_id, push_silent=True)
        deadline = time.monotonic() + 10
        while FeedState.SILENT not in states(events) and time.monotonic() < deadline:
            time.sleep(0.05)
        sbx.clear_faults(account.client_id)  # the server answers again: the reconnect works

    def reconnected(events):
        seen = states(events)
        if FeedState.DISCONNECTED not in seen:
            return False
        return FeedState.CONNECTED in seen[seen.index(FeedState.DISCONNECTED) :]

    events, feed = run_feed(
        sbx,
        session,
        script,
        until=reconnected,
        silent_after=0.4,
        reconnect_after_silence=1.2,
    )
    assert reconnected(events), events
    assert FeedState.SILENT in states(events)
    assert feed.connects >= 2
