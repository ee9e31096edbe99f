"""Modify and cancel mirroring (mirror-orders mode): each follower order is linked to the
master order it copies; the master's modification re-sizes and modifies it, the master's
cancellation cancels it; a copy that already filled is left alone and the drift recorded.
Against the sandbox over real sockets, through the copier's tick."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from accounts.models import BrokerAccount
from copytrade.lib import clock
from tests.engine.conftest import account_of, nifty_future
from tests.engine.helpers import expire_oauth_session, until
from trading import selectors
from trading.brokers import sessions
from trading.brokers.aliceblue.client import AliceBlueClient
from trading.engine import decide, sender
from trading.engine.reasons import EventOutcome, Reason
from trading.models import Alert, CopyTrade, MasterOrderEvent, PositionLedger

Status = CopyTrade.Status
SUCCESS = "SUCCESS"
BIG = {"max_order_value": Decimal("900000000"), "max_quantity": 100000}


def _open(world, follower):
    return [o for o in world.orders_of(follower) if o["status"] in ("OPEN", "TRIGGER_PENDING")]


def _rows(follower, action):
    return list(CopyTrade.objects.filter(follower=follower, action=action).order_by("pk"))


def _statuses(ct):
    return [(t.from_status, t.to_status) for t in ct.transitions.order_by("pk")]


def test_a_modified_limit_order_and_its_cancellation_reach_every_follower(make_world):
    world = make_world({}, {"lot_multiplier": Decimal("2")}, {"lot_multiplier": Decimal("0.5")})
    world.tick()
    master_order = world.place("INFY-EQ", "BUY", 10, order_type="LIMIT", price="1400")  # rests
    world.tick(2)
    for follower, quantity in zip(world.followers, (10, 20, 5), strict=True):
        (order,) = _open(world, follower)
        assert (order["quantity"], Decimal(order["price"])) == (quantity, Decimal("1400"))

    world.sbx.modify_order(world.master_client, master_order["order_no"], quantity=20, price="1450")
    world.tick(2)
    for follower, quantity in zip(world.followers, (20, 40, 10), strict=True):
        (order,) = world.orders_of(follower)  # the same order, modified: never a new one
        assert order["status"] == "OPEN"
        assert (order["quantity"], Decimal(order["price"])) == (quantity, Decimal("1450"))
        (place,) = _rows(follower, CopyTrade.Action.PLACE)
        (modify,) = _rows(follower, CopyTrade.Action.MODIFY)
        assert modify.linked_id == place.pk and modify.status == Status.SUCCESS
        assert modify.broker_order_id == place.broker_order_id == order["order_no"]
        assert modify.tag.startswith("CM") and modify.tag != place.tag
        assert _statuses(modify) == [("", "PENDING"), ("PENDING", "SENDING"), ("SENDING", SUCCESS)]
        place.refresh_from_db()  # the link follows the follower order's new terms
        assert (place.quantity, place.price) == (quantity, Decimal("1450"))
    event = MasterOrderEvent.objects.get(kind="modified")
    assert event.outcome == EventOutcome.COPIED and "3 modified" in event.outcome_note

    world.sbx.cancel_order(world.master_client, master_order["order_no"])
    world.tick(2)
    for follower in world.followers:
        (order,) = world.orders_of(follower)
        assert order["status"] == "CANCELLED"
        (place,) = _rows(follower, CopyTrade.Action.PLACE)
        (cancel,) = _rows(follower, CopyTrade.Action.CANCEL)
        assert cancel.linked_id == place.pk and cancel.status == Status.SUCCESS
        assert cancel.tag.startswith("CX")
        place.refresh_from_db()
        assert place.broker_final and place.filled_quantity == 0
        assert not _open(world, follower)
        assert world.net_of(follower, "INFY-EQ") == 0
        # the follower's board shows the changes for what they are
        rows, _, _ = selectors.board_page(follower.pk, page=1, per_page=25, total=3)
        assert sorted(r.details.rsplit(" · ", 1)[-1] for r in rows) == ["LIMIT", "cancel", "modify"]
    assert not PositionLedger.objects.exclude(net_quantity=0).exists()


def test_cancel_after_the_follower_already_filled_leaves_it_and_records_the_drift(make_world):
    world = make_world({}, {"lot_multiplier": Decimal("2")})
    # the master's order fills 3 at a time; the followers' copies fill at once
    world.sbx.set_matching(world.master_client, partial_fill_qty=3)
    world.tick()
    master_order = world.place("INFY-EQ", "BUY", 10, order_type="LIMIT", price="1500")
    world.tick(2)
    for follower in world.followers:
        assert [o["status"] for o in world.orders_of(follower)] == ["COMPLETE"]
    world.sbx.cancel_order(world.master_client, master_order["order_no"])  # 3 of 10 filled
    world.tick(2)
    # the filled copies are left alone: their positions stay, the mismatch is recorded
    for follower, quantity in zip(world.followers, (10, 20), strict=True):
        assert world.net_of(follower, "INFY-EQ") == quantity
        assert len(world.orders_of(follower)) == 1  # no cancel was sent
        (cancel,) = _rows(follower, CopyTrade.Action.CANCEL)
        assert cancel.status == Status.SKIPPED and cancel.reason_code == Reason.ALREADY_FILLED
        assert f"filled {quantity} of {quantity}" in cancel.reason and "3 of 10" in cancel.reason
        (alert,) = Alert.objects.filter(kind=Alert.Kind.DRIFT, follower=follower)
        assert alert.copy_trade_id == cancel.linked_id
        # the tick's digest job saw it (this master has no email address: recorded, skipped)
        assert alert.notified_via == "no_email"


def test_a_cancel_that_meets_a_fill_not_tracked_yet_is_a_drift_not_a_failure(make_world):
    world = make_world({})
    (follower,) = world.followers
    world.sbx.set_matching(world.master_client, partial_fill_qty=3)
    world.tick()
    master_order = world.place("INFY-EQ", "BUY", 10, order_type="LIMIT", price="1500")
    # the copier has not seen the follower's fill yet (no follower tracking in these passes)
    world.tick(2, track_followers=False)
    (place,) = _rows(follower, CopyTrade.Action.PLACE)
    assert place.status == Status.SUCCESS and place.filled_quantity == 0
    assert [o["status"] for o in world.orders_of(follower)] == ["COMPLETE"]
    world.sbx.cancel_order(world.master_client, master_order["order_no"])
    world.tick(track_followers=False)
    # the broker refused the cancel (the order had filled): judged by the order book
    (cancel,) = _rows(follower, CopyTrade.Action.CANCEL)
    assert cancel.status == Status.SKIPPED and cancel.reason_code == Reason.ALREADY_FILLED
    assert "filled 10 of 10" in cancel.reason and "3 of 10" in cancel.reason
    assert _statuses(cancel)[-1] == ("SENDING", "SKIPPED")
    assert Alert.objects.filter(kind=Alert.Kind.DRIFT, follower=follower).count() == 1
    assert not Alert.objects.filter(kind=Alert.Kind.COPY_FAILED).exists()
    world.tick()  # the fill is tracked: the ledger follows the follower's order
    assert PositionLedger.objects.get(follower=follower).net_quantity == 10
    assert world.net_of(follower, "INFY-EQ") == 10


def test_an_ambiguous_modify_and_cancel_are_judged_by_the_order_book(make_world):
    world = make_world({})
    (follower,) = world.followers
    world.tick()
    master_order = world.place("INFY-EQ", "BUY", 5, order_type="LIMIT", price="1400")
    world.tick(2)
    # the follower's broker applies each change, then drops the connection without answering
    world.sbx.set_faults(world.client_of(follower), order_timeout_rate=1.0, timeout_hold_ms=2500)
    world.sbx.modify_order(world.master_client, master_order["order_no"], price="1410")
    world.tick()
    (modify,) = _rows(follower, CopyTrade.Action.MODIFY)
    assert modify.status == Status.SUCCESS and "confirmed in the order book" in modify.reason
    (order,) = world.orders_of(follower)
    assert Decimal(order["price"]) == Decimal("1410")
    world.sbx.cancel_order(world.master_client, master_order["order_no"])
    world.tick()
    world.sbx.clear_faults(world.client_of(follower))
    (cancel,) = _rows(follower, CopyTrade.Action.CANCEL)
    assert cancel.status == Status.SUCCESS and "confirmed in the order book" in cancel.reason
    (order,) = world.orders_of(follower)
    assert order["status"] == "CANCELLED"
    assert not Alert.objects.exists()


def test_a_cancel_waits_for_the_copy_still_being_sent_then_cancels_it(make_world):
    world = make_world({})
    (follower,) = world.followers
    world.tick()
    # the follower's broker takes each order but answers only after the client gave up: the
    # copy stays SENDING until its tag is found in the order book
    world.sbx.set_faults(world.client_of(follower), order_timeout_rate=1.0, timeout_hold_ms=2500)

    def place_row(status):
        return lambda: CopyTrade.objects.filter(
            follower=follower, action="place", status=status
        ).first()

    def cancel_row():
        cancel = CopyTrade.objects.filter(follower=follower, action="cancel").first()
        return cancel and (cancel, CopyTrade.objects.get(pk=cancel.linked_id).status)

    async def body(copier):
        order = await asyncio.to_thread(
            world.place, "INFY-EQ", "BUY", 5, order_type="LIMIT", price="1400"
        )
        await until(place_row(Status.SENDING))
        await asyncio.to_thread(world.sbx.cancel_order, world.master_client, order["order_no"])
        _, linked_status = await until(cancel_row)
        assert linked_status == Status.SENDING  # decided while the copy was being sent
        await asyncio.to_thread(world.sbx.clear_faults, world.client_of(follower))
        return await until(
            lambda: CopyTrade.objects.filter(action="cancel", status=Status.SUCCESS).first(),
            timeout=15,
        )

    cancel = world.run(body)
    place = CopyTrade.objects.get(pk=cancel.linked_id)
    assert place.status == Status.SUCCESS and place.reason.startswith("found by tag")
    assert cancel.decided_at < place.acknowledged_at <= cancel.sent_at  # waited for the ack
    assert _statuses(cancel) == [("", "PENDING"), ("PENDING", "SENDING"), ("SENDING", SUCCESS)]
    (order,) = world.orders_of(follower)
    assert order["status"] == "CANCELLED"


def test_modify_and_cancel_through_send_copy_trade_a_plain_function_of_an_id(make_world):
    world = make_world({}, {"lot_multiplier": Decimal("2")})
    world.tick()
    order = world.place("INFY-EQ", "BUY", 3, order_type="LIMIT", price="1400")
    world.tick(2)
    master_account = BrokerAccount.objects.get(owner=world.master.user)

    def decide_only():
        """Record the master's order book without the copier sending anything."""
        with AliceBlueClient(sessions.session_for(account=master_account)) as broker:
            rows = broker.order_book()
        return decide.record_rows(
            master_id=world.master.pk, rows=rows, source="poll", received_at=clock.now()
        )

    world.sbx.modify_order(world.master_client, order["order_no"], quantity=4, price="1420")
    recorded = decide_only()
    assert len(recorded.pending_ids) == 2
    for copy_id in recorded.pending_ids:
        assert sender.send_copy_trade(copy_id) == Status.SUCCESS
        assert sender.send_copy_trade(copy_id) == Status.SUCCESS  # claimed once, sent once
    for follower, quantity in zip(world.followers, (4, 8), strict=True):
        (row,) = world.orders_of(follower)
        assert (row["quantity"], Decimal(row["price"])) == (quantity, Decimal("1420"))
    world.sbx.cancel_order(world.master_client, order["order_no"])
    recorded = decide_only()
    for copy_id in recorded.pending_ids:
        assert sender.send_copy_trade(copy_id) == Status.SUCCESS
    assert [o["status"] for f in world.followers for o in world.orders_of(f)] == ["CANCELLED"] * 2


def test_a_copy_not_sent_yet_is_cancelled_in_the_database_and_never_sent(make_world):
    world = make_world({})
    (follower,) = world.followers
    world.tick()
    world.place("INFY-EQ", "BUY", 5)
    world.tick(2)
    assert world.net_of(follower, "INFY-EQ") == 5
    # the follower's session ends (an AliceBlue-login account: the copier cannot log it in),
    # so the copy of the master's resting exit waits, PENDING
    account = account_of(follower)
    expire_oauth_session(account)
    order = world.place("INFY-EQ", "SELL", 5, order_type="LIMIT", price="1600")
    world.tick()
    (place,) = [c for c in _rows(follower, CopyTrade.Action.PLACE) if c.intent == "exit"]
    assert place.status == Status.PENDING and place.reason_code == Reason.NEEDS_LOGIN
    world.sbx.cancel_order(world.master_client, order["order_no"])
    world.tick()
    place.refresh_from_db()
    assert place.status == Status.CANCELLED and place.reason_code == Reason.MASTER_CANCELLED
    assert _statuses(place) == [("", "PENDING"), ("PENDING", "CANCELLED")]
    (cancel,) = _rows(follower, CopyTrade.Action.CANCEL)
    assert cancel.status == Status.SKIPPED and cancel.reason_code == Reason.BEFORE_SEND
    # back online: nothing is sent for the cancelled copy
    BrokerAccount.objects.filter(pk=account.pk).update(login_method="api_key")
    world.tick(2)
    assert [o["side"] for o in world.orders_of(follower)] == ["BUY"]
    assert world.net_of(follower, "INFY-EQ") == 5


def test_an_exit_raised_beyond_the_position_modifies_the_exit_and_adds_the_entry(make_world):
    world = make_world({}, {"lot_multiplier": Decimal("2")})
    one, two = world.followers
    world.tick()
    world.place("INFY-EQ", "BUY", 10)
    world.tick(2)
    # a resting exit of half the position, then raised to 15: 10 closes, 5 opens short
    order = world.place("INFY-EQ", "SELL", 5, order_type="LIMIT", price="1600")
    world.tick(2)
    assert [o["quantity"] for o in _open(world, one)] == [5]
    world.sbx.modify_order(world.master_client, order["order_no"], quantity=15)
    world.tick(2)
    for follower, held in ((one, 10), (two, 20)):
        exit_leg, entry_leg = sorted(_open(world, follower), key=lambda o: o["order_no"])
        assert exit_leg["quantity"] == held  # the exit modified: the whole position
        assert entry_leg["quantity"] == held // 2  # the short part, a new entry order
        (modify,) = _rows(follower, CopyTrade.Action.MODIFY)
        assert modify.status == Status.SUCCESS and modify.intent == "exit"
        added = CopyTrade.objects.get(follower=follower, event__kind="modified", action="place")
        assert added.intent == "entry" and added.status == Status.SUCCESS
    world.sbx.set_price("NSE", "INFY-EQ", "1600")  # everything fills
    world.tick(2)
    assert world.net_of(one, "INFY-EQ") == -5 and world.net_of(two, "INFY-EQ") == -10
    for follower in world.followers:
        ledger = PositionLedger.objects.get(follower=follower)
        assert ledger.exit_reserved == 0 and ledger.net_quantity == world.net_of(
            follower, "INFY-EQ"
        )


def test_a_modification_across_the_freeze_quantity_adds_and_cancels_legs(make_world):
    world = make_world({"lot_multiplier": Decimal("20"), **BIG}, funds="100000000000")
    (follower,) = world.followers
    world.sbx.update_account(world.client_of(follower), funds="100000000000")
    future = nifty_future(world.sbx)
    lot, freeze = int(future["lot_size"]), int(future["freeze_qty"])
    symbol = future["trading_symbol"]
    limit = "20000"  # well under the market: the orders rest
    world.tick()
    max_leg = freeze // lot * lot
    # 2 master lots -> 40 follower lots: legs of at most the freeze quantity
    order = world.place(symbol, "BUY", 2 * lot, order_type="LIMIT", price=limit)
    world.tick(2)
    before = sorted((o["quantity"] for o in _open(world, follower)), reverse=True)
    assert before == [max_leg, 40 * lot - max_leg]
    # 4 master lots -> 80 follower lots: the open legs grow, a leg is added
    world.sbx.modify_order(world.master_client, order["order_no"], quantity=4 * lot)
    world.tick(2)
    after = sorted((o["quantity"] for o in _open(world, follower)), reverse=True)
    assert after == [max_leg, max_leg, 80 * lot - 2 * max_leg]
    assert len(world.orders_of(follower)) == 3  # two modified, one added
    # 1 master lot -> 20 follower lots: the legs no longer needed are cancelled
    world.sbx.modify_order(world.master_client, order["order_no"], quantity=lot)
    world.tick(2)
    assert [o["quantity"] for o in _open(world, follower)] == [20 * lot]
    assert len(world.orders_of(follower)) == 3
    changes = CopyTrade.objects.filter(follower=follower).exclude(action="place")
    assert {c.status for c in changes} <= {Status.SUCCESS, Status.SKIPPED}
    assert {c.action for c in changes} == {"modify", "cancel"}


def test_modifications_and_cancels_in_copy_fills_mode_have_nothing_to_mirror(make_world):
    world = make_world({}, copy_mode="fills")
    (follower,) = world.followers
    world.tick()
    order = world.place("INFY-EQ", "BUY", 5, order_type="LIMIT", price="1400")
    world.tick()
    world.sbx.modify_order(world.master_client, order["order_no"], price="1410")
    world.sbx.cancel_order(world.master_client, order["order_no"])
    world.tick()
    assert world.orders_of(follower) == []
    assert not CopyTrade.objects.exists()
    for kind in ("modified", "cancelled"):
        event = MasterOrderEvent.objects.get(kind=kind)
        assert event.outcome == EventOutcome.RECORDED
        assert "nothing to mirror" in event.outcome_note
