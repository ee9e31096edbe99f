"""Every entry check, in DESIGN.md's order, each with its named reason — through the engine
against the sandbox (the unsupported order types, which the sandbox does not accept from a
master, through the decision step with the order as the broker would report it)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from copytrade.lib import clock
from tests.engine.conftest import nifty_future
from tests.engine.helpers import order_row
from trading.brokers.aliceblue.types import Complexity, OrderType
from trading.engine import decide
from trading.engine.checks import NO_PRICE
from trading.engine.reasons import ENTRY_CHECK_ORDER, Reason
from trading.models import BrokerSession, CopyTrade, DailyPnl

Status = CopyTrade.Status


def _reason(world, follower):
    (copy,) = world.copies(follower)
    assert copy.status == Status.SKIPPED, copy.reason
    assert world.orders_of(follower) == []
    return copy.reason_code


def test_each_entry_check_names_its_reason(make_world):
    world = make_world(
        {"display_name": "ok"},
        {"display_name": "paused", "is_paused": True, "allowed_product_types": ["CNC"]},
        {"display_name": "no login", "connect": False},
        {"display_name": "instrument", "allowed_instruments": ["NSE:SBIN"], "max_order_value": 1},
        {"display_name": "product", "allowed_product_types": ["CNC", "NRML"]},
        {"display_name": "value", "max_order_value": Decimal("10000")},
        {"display_name": "allowed", "allowed_instruments": ["NSE:INFY", "NFO:NIFTY"]},
    )
    ok, paused, no_login, instrument, product, value, allowed = world.followers
    world.tick()
    world.place("INFY-EQ", "BUY", 10)  # 10 x 1,500 = 15,000
    world.tick()
    assert len(world.orders_of(ok)) == 1 and len(world.orders_of(allowed)) == 1
    # paused comes before product (it fails both): the first check in order names it
    assert _reason(world, paused) == Reason.FOLLOWER_PAUSED
    assert _reason(world, no_login) == Reason.NEEDS_LOGIN
    # not allowed AND over the order value: the instrument check comes first
    assert _reason(world, instrument) == Reason.INSTRUMENT_NOT_ALLOWED
    assert _reason(world, product) == Reason.PRODUCT_NOT_ALLOWED
    assert _reason(world, value) == Reason.MAX_ORDER_VALUE
    (copy,) = world.copies(value)
    assert copy.order_value == Decimal("15000") and copy.value_price_source == "master_avg"
    assert "₹15,000.00" in copy.reason and "₹10,000.00" in copy.reason


def test_kill_switch_blocks_every_entry(make_world):
    world = make_world({}, {})
    world.master.entries_paused = True
    world.master.save()
    world.tick()
    world.place("INFY-EQ", "BUY", 3)
    world.tick()
    for follower in world.followers:
        assert _reason(world, follower) == Reason.KILL_SWITCH


def test_max_quantity_below_one_lot(make_world):
    world = make_world({"max_quantity": 64, "max_order_value": Decimal("90000000")}, funds="1e8")
    (follower,) = world.followers
    world.tick()
    world.place(nifty_future(world.sbx)["trading_symbol"], "BUY", 65)
    world.tick()
    assert _reason(world, follower) == Reason.MAX_QUANTITY


def test_max_order_value_of_a_limit_order_uses_its_price(make_world):
    world = make_world({"max_order_value": Decimal("14000")}, {"max_order_value": Decimal("15000")})
    over, under = world.followers
    world.sbx.set_price("NSE", "INFY-EQ", "1500")
    world.tick()
    world.place("INFY-EQ", "BUY", 10, order_type="LIMIT", price="1400")  # rests: 14,000
    world.tick()
    assert len(world.orders_of(under)) == 1 and len(world.orders_of(over)) == 1
    world.place("INFY-EQ", "BUY", 10, order_type="LIMIT", price="1450")  # 14,500
    world.tick()
    assert len(world.orders_of(over)) == 1
    copies = world.copies(over)
    assert copies[-1].reason_code == Reason.MAX_ORDER_VALUE
    assert copies[-1].value_price_source == "limit" and copies[-1].order_value == 14500


def test_max_daily_loss_from_the_followers_positions(make_world, settings):
    world = make_world({"display_name": "loser", "max_daily_loss": Decimal("50000")}, {})
    loser, fine = world.followers
    # the follower's own trade (not a copy) loses 500 x 120 = 60,000 on paper
    world.sbx.set_price("NSE", "SBIN-EQ", "1000")
    world.sbx.place_order(world.client_of(loser), "NSE", "SBIN-EQ", "BUY", 120)
    world.sbx.set_price("NSE", "SBIN-EQ", "500")
    world.tick(pnl_refresh=60)
    pnl = DailyPnl.objects.get(account__client_id=world.client_of(loser))
    assert pnl.realised + pnl.unrealised == Decimal("-60000")
    world.place("INFY-EQ", "BUY", 2)
    world.tick()
    assert len(world.orders_of(fine)) == 1
    assert [o["trading_symbol"] for o in world.orders_of(loser)] == ["SBIN-EQ"]
    (copy,) = world.copies(loser)
    assert copy.reason_code == Reason.MAX_DAILY_LOSS and copy.daily_pnl == Decimal("-60000")


def test_market_closed(make_world, sbx, settings):
    sunday = datetime(2026, 11, 29, 11, 0, tzinfo=clock.IST)
    sbx.set_clock(sunday)  # the sandbox itself trades round the clock (and signs in on Sunday)
    world = make_world({})
    (follower,) = world.followers
    # the sessions were stored on the real day; under the frozen clock they are Sunday's
    BrokerSession.objects.update(trading_day=sunday.date())
    settings.TRADING_ROUND_THE_CLOCK = False
    with clock.frozen(sunday):
        world.tick()
        world.place("INFY-EQ", "BUY", 2)
        world.tick()
    assert _reason(world, follower) == Reason.MARKET_CLOSED
    assert "weekend" in world.copies(follower)[0].reason


def _row(**overrides):
    bracket = dict(broker_order_id="BO-1", quantity=4, pending_quantity=4, complexity=Complexity.BO)
    return order_row(**{**bracket, **overrides})


def test_unsupported_order_types_are_skipped(make_world):
    world = make_world({}, {"is_paused": True})
    active, paused = world.followers
    for n, complexity in enumerate((Complexity.BO, Complexity.CO)):
        decide.record_observation(
            master_id=world.master.pk,
            row=_row(broker_order_id=f"X{n}", complexity=complexity),
            source="poll",
            received_at=clock.now(),
        )
    decide.record_observation(
        master_id=world.master.pk,
        row=_row(broker_order_id="MTF", complexity=None, product=None, raw={"product": "MTF"}),
        source="poll",
        received_at=clock.now(),
    )
    reasons = [c.reason_code for c in world.copies(active)]
    assert reasons == [Reason.UNSUPPORTED_ORDER_TYPE] * 3
    assert "BO orders are not copied" in world.copies(active)[0].reason
    assert "MTF" in world.copies(active)[2].reason
    # a paused follower is told it is paused (the earlier check)
    assert {c.reason_code for c in world.copies(paused)} == {Reason.FOLLOWER_PAUSED}


def test_a_market_order_without_any_price_is_not_sent(make_world):
    world = make_world({})
    (follower,) = world.followers
    decide.record_observation(
        master_id=world.master.pk,
        row=_row(order_type=OrderType.MARKET, price=None, complexity=Complexity.REGULAR),
        source="push",
        received_at=clock.now(),
        quote=None,
    )
    (copy,) = world.copies(follower)
    assert copy.status == Status.SKIPPED and copy.reason_code == Reason.MAX_ORDER_VALUE
    assert copy.reason == NO_PRICE


def test_check_order_is_designs():
    assert [r.value for r in ENTRY_CHECK_ORDER] == [
        "follower_paused",
        "kill_switch",
        "needs_login",
        "instrument_not_allowed",
        "product_not_allowed",
        "instrument_unknown",
        "max_quantity",
        "max_order_value",
        "max_daily_loss",
        "unsupported_order_type",
        "market_closed",
    ]
