"""End to end against the sandbox: a master's order is copied once, correctly sized, into every
active follower's order book; a later exit closes the copied positions; skipped followers
say why."""

from __future__ import annotations

from decimal import Decimal

from trading.engine.reasons import Reason
from trading.models import CopyTrade, MasterOrder, MasterOrderEvent, PositionLedger

Status = CopyTrade.Status


def test_master_order_is_copied_once_into_every_active_follower(make_world):
    world = make_world({"lot_multiplier": Decimal("1")}, {"lot_multiplier": Decimal("2")})
    alice, bob = world.followers
    world.tick()  # the day's baseline: nothing in the book yet
    world.place("INFY-EQ", "BUY", 10)
    world.tick()
    assert [o["quantity"] for o in world.orders_of(alice)] == [10]
    assert [o["quantity"] for o in world.orders_of(bob)] == [20]
    assert all(o["status"] == "COMPLETE" for o in world.orders_of(bob))
    copies = world.copies()
    assert {c.status for c in copies} == {Status.SUCCESS}
    assert all(c.broker_order_id and c.tag for c in copies)
    assert {o["tag"] for o in world.orders_of(alice)} == {world.copies(alice)[0].tag}
    world.tick(2)  # nothing new: nothing sent again, fills tracked
    assert len(world.orders_of(alice)) == 1 and len(world.orders_of(bob)) == 1
    bob_copy = world.copies(bob)[0]
    assert bob_copy.filled_quantity == 20 and bob_copy.average_price == Decimal("1500.00")
    assert PositionLedger.objects.get(follower=bob).net_quantity == 20


def test_master_exit_closes_the_followers_copied_positions(make_world):
    world = make_world({"lot_multiplier": Decimal("1")}, {"lot_multiplier": Decimal("3")})
    alice, bob = world.followers
    world.tick()
    world.place("INFY-EQ", "BUY", 10)
    world.tick(2)
    world.place("INFY-EQ", "SELL", 4)
    world.tick(2)
    assert world.net_of(alice, "INFY-EQ") == 6
    assert world.net_of(bob, "INFY-EQ") == 18
    world.place("INFY-EQ", "SELL", 6)
    world.tick(2)
    assert world.net_of(alice, "INFY-EQ") == 0
    assert world.net_of(bob, "INFY-EQ") == 0
    exits = CopyTrade.objects.filter(intent="exit", status=Status.SUCCESS)
    assert exits.count() == 4
    assert {ledger.net_quantity for ledger in PositionLedger.objects.all()} == {0}


def test_skipped_followers_show_why(make_world):
    world = make_world(
        {"lot_multiplier": Decimal("1")},
        {"lot_multiplier": Decimal("1"), "is_paused": True},
        {"lot_multiplier": Decimal("1"), "allowed_product_types": ["CNC"]},
    )
    ok, paused, cnc_only = world.followers
    world.tick()
    world.place("INFY-EQ", "BUY", 5)
    world.tick()
    assert len(world.orders_of(ok)) == 1
    assert world.orders_of(paused) == [] and world.orders_of(cnc_only) == []
    (paused_copy,) = world.copies(paused)
    assert paused_copy.status == Status.SKIPPED
    assert paused_copy.reason_code == Reason.FOLLOWER_PAUSED
    assert "paused" in paused_copy.reason
    (cnc_copy,) = world.copies(cnc_only)
    assert cnc_copy.reason_code == Reason.PRODUCT_NOT_ALLOWED


def test_rejected_master_order_is_never_copied(make_world):
    world = make_world({"lot_multiplier": Decimal("1")}, funds="1000")
    (alice,) = world.followers
    world.tick()
    order = world.place("INFY-EQ", "BUY", 10)  # 15,000 of margin on 1,000 of funds
    assert order["status"] == "REJECTED"
    world.tick()
    assert world.orders_of(alice) == []
    assert CopyTrade.objects.count() == 0
    event = MasterOrderEvent.objects.get()
    assert event.kind == "rejected" and event.outcome == "rejected"
    assert MasterOrder.objects.get().status == "REJECTED"
