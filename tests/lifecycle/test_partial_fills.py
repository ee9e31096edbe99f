"""Partial fills. Copy-fills mode copies each filled increment (as a market order) and carries
the lot-rounding residual forward, so the follower ends at the right total; mirror-orders
mode leaves the follower's order to fill on its own and the ledger follows its fills (also
through a modification in the middle). Against the sandbox over real sockets."""

from __future__ import annotations

from decimal import Decimal

from copytrade.lib.sizing import size_entry
from tests.engine.conftest import nifty_future
from trading.models import CopyTrade, PositionLedger

Status = CopyTrade.Status
FUNDS = "1000000000"
BIG = {"max_order_value": Decimal("900000000"), "max_quantity": 100000, "funds": FUNDS}


def test_copy_fills_mode_several_partial_fills_add_up_to_the_sized_total(make_world):
    multipliers = (Decimal("0.5"), Decimal("1.5"), Decimal("2"))
    world = make_world(*({"lot_multiplier": m, **BIG} for m in multipliers), copy_mode="fills")
    world.sbx.update_account(world.master_client, funds=FUNDS)
    future = nifty_future(world.sbx)
    symbol, lot = future["trading_symbol"], int(future["lot_size"])
    world.sbx.set_matching(world.master_client, partial_fill_qty=3 * lot)  # 3 + 3 + 3 + 1 lots
    world.tick()
    world.place(symbol, "BUY", 10 * lot, order_type="LIMIT", price="30000")  # marketable
    world.tick()
    for _ in range(3):
        world.sbx.step()
        world.tick()
    world.tick()
    (master_fills,) = [o["filled_quantity"] for o in world.sbx.orders(world.master_client)]
    assert master_fills == 10 * lot
    for follower, multiplier in zip(world.followers, multipliers, strict=True):
        expected = size_entry(10 * lot, multiplier, lot_size=lot).quantity
        copies = [c for c in world.copies(follower) if c.status == Status.SUCCESS]
        assert len(copies) >= 3  # one per fill that adds a whole lot
        assert all(c.order_type == "MARKET" and c.quantity % lot == 0 for c in copies)
        assert sum(c.quantity for c in copies) == expected
        assert world.net_of(follower, symbol) == expected
        assert PositionLedger.objects.get(follower=follower).net_quantity == expected
    # 0.5: targets 1, 3, 4, 5 lots -> increments 1, 2, 1, 1 (the half lots carried)
    half = [c.quantity // lot for c in world.copies(world.followers[0])]
    assert [q for q in half if q] == [1, 2, 1, 1]


def test_mirror_mode_the_ledger_follows_the_followers_own_fills(make_world):
    world = make_world({}, {"lot_multiplier": Decimal("2")})
    world.sbx.set_matching(None, partial_fill_qty=4)  # every account fills 4 at a time
    world.tick()
    order = world.place("INFY-EQ", "BUY", 10, order_type="LIMIT", price="1600")
    world.tick()
    one, two = world.followers
    assert PositionLedger.objects.get(follower=one).net_quantity == 4
    assert PositionLedger.objects.get(follower=two).net_quantity == 4
    # the master raises its (partly filled) order: the followers' orders are modified, and
    # keep filling on their own
    world.sbx.modify_order(world.master_client, order["order_no"], quantity=14)
    world.tick()
    for _ in range(8):
        world.sbx.step()
        world.tick()
    for follower, total in ((one, 14), (two, 28)):
        (copy,) = [c for c in world.copies(follower) if c.action == "place"]
        assert copy.quantity == total and copy.filled_quantity == total and copy.broker_final
        assert PositionLedger.objects.get(follower=follower).net_quantity == total
        assert world.net_of(follower, "INFY-EQ") == total
