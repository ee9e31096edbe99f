"""DESIGN.md's sizing table, through the whole engine and the sandbox: multipliers, floor,
caps, the at-least-one rule, whole lots and freeze-quantity legs."""

from __future__ import annotations

from decimal import Decimal

from tests.engine.conftest import nifty_future
from trading.engine.reasons import Reason
from trading.models import CopyTrade

Status = CopyTrade.Status
BIG = {"max_order_value": Decimal("900000000")}


def _quantities(world, follower):
    return sorted(int(o["quantity"]) for o in world.orders_of(follower))


def test_equity_sizing_table(make_world):
    world = make_world(
        {"lot_multiplier": Decimal("1")},
        {"lot_multiplier": Decimal("2")},
        {"lot_multiplier": Decimal("0.5")},  # 7 x 0.5 = 3.5 -> floor 3
        {"lot_multiplier": Decimal("0.05")},  # 0.35 -> at least 1
        {"lot_multiplier": Decimal("3"), "max_quantity": 20},  # 21 -> capped at 20
        {"lot_multiplier": Decimal("1.25")},  # 8.75 -> 8
    )
    one, two, half, tiny, capped, odd = world.followers
    world.tick()
    world.place("INFY-EQ", "BUY", 7)
    world.tick()
    assert _quantities(world, one) == [7]
    assert _quantities(world, two) == [14]
    assert _quantities(world, half) == [3]
    assert _quantities(world, tiny) == [1]
    assert _quantities(world, capped) == [20]
    assert _quantities(world, odd) == [8]
    notes = {c.follower_id: c.sizing_note for c in world.copies()}
    assert "raised to the minimum 1" in notes[tiny.pk]
    assert "capped at 20" in notes[capped.pk]
    for copy in world.copies():
        assert copy.master_quantity == 7 and copy.lot_size == 1


def test_lot_sizing_table(make_world):
    world = make_world(
        {"lot_multiplier": Decimal("1.5"), "max_quantity": 5000, **BIG},  # 3 lots of 65
        {"lot_multiplier": Decimal("0.4"), "max_quantity": 5000, **BIG},  # 0.8 lot -> 1 lot
        {"lot_multiplier": Decimal("1"), "max_quantity": 100, **BIG},  # capped to 1 lot
        {"lot_multiplier": Decimal("1"), "max_quantity": 50, **BIG},  # under one lot: SKIPPED
        funds="100000000",
    )
    for follower in world.followers:
        world.sbx.update_account(world.client_of(follower), funds="100000000")
    three, raised, capped, under = world.followers
    future = nifty_future(world.sbx)["trading_symbol"]
    world.tick()
    world.place(future, "BUY", 130)  # 2 lots
    world.tick()
    assert _quantities(world, three) == [195]
    assert _quantities(world, raised) == [65]
    assert _quantities(world, capped) == [65]
    assert world.orders_of(under) == []
    (skipped,) = world.copies(under)
    assert skipped.status == Status.SKIPPED and skipped.reason_code == Reason.MAX_QUANTITY
    assert all(c.lot_size == 65 for c in world.copies())


def test_freeze_quantity_splits_into_legs_each_its_own_copy_trade(make_world):
    world = make_world(
        {"lot_multiplier": Decimal("2.3"), "max_quantity": 10000, **BIG},
        funds="1000000000",
    )
    (follower,) = world.followers
    world.sbx.update_account(world.client_of(follower), funds="1000000000")
    future = nifty_future(world.sbx)["trading_symbol"]
    world.tick()
    world.place(future, "BUY", 1755)  # 27 lots (the freeze limit); the follower: 62 lots
    world.tick()
    assert _quantities(world, follower) == [520, 1755, 1755]
    legs = world.copies(follower)
    assert [c.leg for c in legs] == [0, 1, 2]
    assert len({c.tag for c in legs}) == 3
    assert {c.status for c in legs} == {Status.SUCCESS}
    assert {o["tag"] for o in world.orders_of(follower)} == {c.tag for c in legs}
