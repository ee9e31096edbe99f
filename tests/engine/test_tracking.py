"""Follower order tracking against the sandbox: broker status, fills, average price,
rejection, exchange time, slippage; a later rejection turns SUCCESS into FAILED; partial
fills move the ledger as they come; copy-fills mode copies each fill (residual carried)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.engine.conftest import account_of
from trading.engine.reasons import Reason
from trading.models import Alert, CopyTrade, PositionLedger

Status = CopyTrade.Status


def test_a_later_rejection_turns_success_into_failed(make_world):
    world = make_world({"display_name": "poor"})
    (poor,) = world.followers
    world.sbx.update_account(world.client_of(poor), funds="100")  # margin shortfall
    world.tick()
    world.place("INFY-EQ", "BUY", 5)
    world.tick()
    (copy,) = world.copies(poor)
    (order,) = world.orders_of(poor)
    assert order["status"] == "REJECTED"
    assert copy.status == Status.FAILED and copy.reason_code == Reason.EXCHANGE_REJECTED
    assert "Margin" in copy.reason or "margin" in copy.reason
    assert copy.broker_order_id == order["order_no"] and copy.broker_final
    assert list(copy.transitions.values_list("to_status", flat=True)) == [
        "PENDING",
        "SENDING",
        "SUCCESS",
        "FAILED",
    ]
    assert Alert.objects.get(copy_trade=copy).kind == "copy_failed"
    assert not PositionLedger.objects.filter(follower=poor, net_quantity__gt=0).exists()


def test_fills_average_price_exchange_time_and_slippage(make_world):
    world = make_world({"lot_multiplier": Decimal("2")})
    (follower,) = world.followers
    world.sbx.set_price("NSE", "INFY-EQ", "1500")
    world.tick()
    world.place("INFY-EQ", "BUY", 5)  # the master fills at 1500
    world.sbx.set_price("NSE", "INFY-EQ", "1502.5")  # the market moves before the copy
    world.tick(2)
    (copy,) = world.copies(follower)
    assert copy.filled_quantity == 10 and copy.average_price == Decimal("1502.5")
    assert copy.slippage == Decimal("2.5")  # paid 2.50 more than the master
    assert copy.broker_status.lower() == "complete" and copy.broker_final
    assert copy.exchange_time is not None
    ledger = PositionLedger.objects.get(follower=follower)
    assert ledger.net_quantity == 10 and ledger.buy_value == Decimal("15025")


def test_partial_fills_move_the_ledger_as_they_come(make_world):
    world = make_world({})
    (follower,) = world.followers
    world.sbx.set_matching(world.client_of(follower), partial_fill_qty=3)
    world.tick()
    world.place("INFY-EQ", "BUY", 7)
    world.tick()
    copy = world.copies(follower)[0]
    assert copy.status == Status.SUCCESS and copy.filled_quantity == 3
    assert PositionLedger.objects.get(follower=follower).net_quantity == 3
    world.sbx.step()
    world.tick()
    assert PositionLedger.objects.get(follower=follower).net_quantity == 6
    world.sbx.step()
    world.tick()
    copy.refresh_from_db()
    assert copy.filled_quantity == 7 and copy.ledger_quantity == 7 and copy.broker_final
    assert PositionLedger.objects.get(follower=follower).net_quantity == 7
    world.tick()  # the same fills seen again change nothing
    assert PositionLedger.objects.get(follower=follower).net_quantity == 7


def test_copy_fills_mode_copies_each_fill_and_carries_the_residual(make_world):
    world = make_world({"lot_multiplier": Decimal("0.5")}, copy_mode="fills")
    (follower,) = world.followers
    world.sbx.set_matching(world.master_client, partial_fill_qty=3)
    world.tick()
    world.place("INFY-EQ", "BUY", 10, order_type="LIMIT", price="1600")  # fills 3,3,3,1
    world.tick()
    for _ in range(3):
        world.sbx.step()
        world.tick()
    world.tick()
    entries = [c for c in world.copies(follower) if c.status == Status.SUCCESS]
    assert [c.quantity for c in entries] == [1, 2, 1, 1]  # targets 1, 3, 4, 5: floor(10 x 0.5)
    assert all(c.order_type == "MARKET" for c in entries)
    assert world.net_of(follower, "INFY-EQ") == 5


def test_a_failed_batch_applies_each_accounts_snapshots_in_order(make_world, monkeypatch):
    """One account's update breaks the push batch: the others are applied on their own, and
    an order's snapshots in a frame burst (complete, then a late 'open') still all count."""
    from dataclasses import replace

    from trading.brokers import sessions
    from trading.brokers.aliceblue.client import AliceBlueClient
    from trading.brokers.aliceblue.types import OrderStatus
    from trading.engine import tracking
    from trading.engine.tracker import filled_of

    world = make_world({}, {})
    first, second = world.followers
    world.sbx.set_price("NSE", "INFY-EQ", "1500")
    world.tick()
    world.place("INFY-EQ", "BUY", 5, order_type="LIMIT", price="1400")  # rests, unfilled
    world.tick(2)
    one, two = world.copies(first)[0], world.copies(second)[0]
    assert one.status == two.status == Status.SUCCESS and one.filled_quantity == 0
    account_one = account_of(first).pk
    account_two = account_of(second).pk
    rows = {}
    for account, copy in ((account_one, one), (account_two, two)):
        book = AliceBlueClient(sessions.session_for(account=account)).order_book()
        (rows[account],) = [r for r in book if r.broker_order_id == copy.broker_order_id]
    open_row = rows[account_one]
    complete = replace(
        open_row,
        status=OrderStatus.COMPLETE,
        raw_status="complete",
        filled_quantity=open_row.quantity,
        pending_quantity=0,
        average_price=Decimal("1400"),
    )
    assert filled_of(complete) == one.quantity
    real_apply = tracking._apply_one

    def broken_for_two(ct, row, now, result):
        if ct.pk == two.pk:
            raise RuntimeError("bad update")
        real_apply(ct, row, now, result)

    monkeypatch.setattr(tracking, "_apply_one", broken_for_two)
    with pytest.raises(RuntimeError):
        tracking.apply_follower_batch(
            [
                (account_one, [complete]),
                (account_two, [rows[account_two]]),
                (account_one, [open_row]),
            ]
        )
    one.refresh_from_db()
    assert one.filled_quantity == one.quantity and one.broker_final
    assert PositionLedger.objects.get(follower=first).net_quantity == one.quantity
