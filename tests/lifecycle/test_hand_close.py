"""A follower closes (part of) a copied position by hand in its own broker account: against the
sandbox over real sockets. Reconciliation reduces the position ledger to what the broker still
holds (audited, shown in the drift report), so the master's later exit sells only that and the
follower ends flat, never short; shares the follower holds beyond the ledger are its own."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from django.test import Client
from django.urls import reverse

from accounts.models import BrokerAccount
from copytrade.lib import clock
from tests.conftest import login
from tests.engine.helpers import until
from tests.engine.test_detection import _connected
from tests.factories import BrokerAccountFactory, CopyTradeFactory, FollowerFactory
from tests.lifecycle.test_reconciliation import drifts, run_reconciliation
from trading.brokers.aliceblue.types import Position
from trading.brokers.aliceblue.types import Product as BrokerProduct
from trading.engine import tracking
from trading.engine.lifecycle import reconcile
from trading.engine.runner import Copier, Watch
from trading.models import AuditEvent, CopyTrade, PositionDrift, PositionLedger


def ledger_of(follower, symbol: str = "INFY-EQ") -> int:
    return PositionLedger.objects.get(follower=follower, trading_symbol=symbol).net_quantity


def new_orders(world, follower, before: int) -> list[tuple[str, str, int]]:
    return [
        (o["side"], o["trading_symbol"], int(o["quantity"]))
        for o in world.orders_of(follower)[before:]
    ]


def test_a_hand_close_is_taken_out_of_the_ledger_and_the_master_exit_never_goes_short(
    make_world,
):
    world = make_world({}, {})
    part, whole = world.followers
    world.tick()
    world.place("INFY-EQ", "BUY", 10)
    world.tick(2)
    assert [world.net_of(f, "INFY-EQ") for f in world.followers] == [10, 10]
    assert [ledger_of(f) for f in world.followers] == [10, 10]

    # in their own accounts: one sells 6 by hand, the other all 10
    world.sbx.place_order(world.client_of(part), "NSE", "INFY-EQ", "SELL", 6)
    world.sbx.place_order(world.client_of(whole), "NSE", "INFY-EQ", "SELL", 10)
    result = run_reconciliation(world)
    assert len(result.reduced) == 2 and not result.pending_ids
    assert [ledger_of(f) for f in world.followers] == [4, 0]
    reductions = AuditEvent.objects.filter(action="ledger.closed_outside").order_by("pk")
    assert sorted(
        (a.before["net_quantity"], a.after["net_quantity"], a.after["broker_net"])
        for a in reductions
    ) == [(10, 0, 0), (10, 4, 4)]
    assert {a.after["reason"] for a in reductions} == {"closed outside copytrade"}
    assert {a.master_id for a in reductions} == {world.master.pk}
    # the drift report shows it: the master still holds 10, the ledger counts what is left
    found = drifts(world)
    p = found[(part.display_name, "INFY-EQ")]
    w = found[(whole.display_name, "INFY-EQ")]
    assert (p.expected, p.ledger_net, p.broker_net, p.closed_by_hand) == (10, 4, 4, 6)
    assert (w.expected, w.ledger_net, w.broker_net, w.closed_by_hand) == (10, 0, 0, 10)
    assert "closed 6 outside copytrade" in p.note
    page = login(Client(), world.master.user).get(reverse("trading:master_dashboard"))
    assert "The follower closed 6 outside copytrade" in page.content.decode()
    # a second pass changes nothing: no second reduction, still reported
    again = run_reconciliation(world)
    assert not again.reduced and reductions.count() == 2
    assert drifts(world)[(part.display_name, "INFY-EQ")].closed_by_hand == 6

    orders_before = {f.pk: len(world.orders_of(f)) for f in world.followers}
    world.place("INFY-EQ", "SELL", 10)  # the master exits fully
    world.tick(2)

    # the partial hand close: exactly the 4 left is sold, the follower ends flat
    (part_exit,) = CopyTrade.objects.filter(follower=part, intent="exit")
    assert (part_exit.status, part_exit.quantity, part_exit.filled_quantity) == ("SUCCESS", 4, 4)
    assert new_orders(world, part, orders_before[part.pk]) == [("SELL", "INFY-EQ", 4)]
    assert world.net_of(part, "INFY-EQ") == 0 and ledger_of(part) == 0
    # the whole hand close: SKIPPED, nothing to exit, nothing sent, never short
    (whole_exit,) = CopyTrade.objects.filter(follower=whole, intent="exit")
    assert (whole_exit.status, whole_exit.quantity) == ("SKIPPED", 0)
    assert whole_exit.reason_code == "follower_flat"
    assert whole_exit.reason == "The follower holds no copied position to exit."
    assert new_orders(world, whole, orders_before[whole.pk]) == []
    assert world.net_of(whole, "INFY-EQ") == 0 and ledger_of(whole) == 0

    # everything matches again: the drifts resolve
    run_reconciliation(world)
    assert drifts(world) == {}
    assert PositionDrift.objects.filter(resolved_at__isnull=False).count() == 2


def test_a_hand_close_just_before_the_master_exit_is_taken_out_at_once(make_world, monkeypatch):
    """The running copier, the periodic reconciliation an hour away: the follower's order
    feed brings its hand sell (an order that is not ours, on a copied position), the copier
    reconciles that account at once, and the master's exit 1.5 s later sells only the 4 left.
    Without the prompt pass the follower sold 10 and ended short 6."""
    world = make_world({}, {})
    part, other = world.followers
    account = BrokerAccount.objects.get(owner=part.user)
    world.tick()
    prompt: list[list[int]] = []
    periodic = reconcile.reconcile_accounts

    async def spy(copier, only=None):
        if only is not None:
            prompt.append(sorted(only))
        return await periodic(copier, only)

    monkeypatch.setattr(reconcile, "reconcile_accounts", spy)

    def exits_done():
        rows = CopyTrade.objects.filter(intent="exit", action="place")
        return rows.count() == 2 and all(r.broker_final for r in rows)

    async def body(copier):
        await until(_connected(world))
        await asyncio.to_thread(world.place, "INFY-EQ", "BUY", 10)
        await until(lambda: _copied(world) == [10, 10])
        await until(lambda: world.sbx.sockets(world.client_of(part)) > 0)  # its order feed
        await asyncio.sleep(1.0)  # the copies' fills came in by push and poll
        assert prompt == []  # our own copies' fills trigger nothing
        hand = await asyncio.to_thread(
            world.sbx.place_order, world.client_of(part), "NSE", "INFY-EQ", "SELL", 6
        )
        await asyncio.sleep(1.5)
        await asyncio.to_thread(world.place, "INFY-EQ", "SELL", 10)  # the master exits fully
        await until(exits_done, timeout=15)
        return hand, dict(copier._hand_seen), await copier._client(account.pk).order_book()

    # no periodic pass, no follower poll in time: only the order feed (push) can tell
    hand, seen, book = world.run(body, reconcile=3600, follower_poll_fast=30, follower_poll_slow=30)
    (part_exit,) = CopyTrade.objects.filter(follower=part, intent="exit")
    assert (part_exit.status, part_exit.quantity, part_exit.filled_quantity) == ("SUCCESS", 4, 4)
    assert world.net_of(part, "INFY-EQ") == 0 and ledger_of(part) == 0  # flat, never short
    (other_exit,) = CopyTrade.objects.filter(follower=other, intent="exit")
    assert (other_exit.quantity, other_exit.filled_quantity) == (10, 10)
    assert world.net_of(other, "INFY-EQ") == 0 and ledger_of(other) == 0
    assert prompt == [[account.pk]]  # once, for that follower only
    assert seen == {(account.pk, hand["order_no"]): 6}
    (reduction,) = AuditEvent.objects.filter(action="ledger.closed_outside")
    assert (reduction.before["net_quantity"], reduction.after["net_quantity"]) == (10, 4)
    # its order book (the copied buy, the hand sell, the copied exit): with nothing copied
    # left, no hand trade; with a copied position, only the hand sell is one
    assert len(book) == 3
    assert tracking.hand_fills(account.pk, part.pk, book) == []
    PositionLedger.objects.filter(follower=part).update(net_quantity=4)
    assert tracking.hand_fills(account.pk, part.pk, book) == [(account.pk, hand["order_no"], 6)]


def test_a_hand_trade_seen_by_the_follower_poll_is_reconciled_once(make_world, monkeypatch):
    world = make_world({}, {})
    part, _ = world.followers
    world.tick()
    world.place("INFY-EQ", "BUY", 10)
    world.tick(2)
    world.sbx.place_order(world.client_of(part), "NSE", "INFY-EQ", "SELL", 6)
    accounts = [BrokerAccount.objects.get(owner=f.user).pk for f in world.followers]
    prompt: list[list[int]] = []
    periodic = reconcile.reconcile_accounts

    async def spy(copier, only=None):
        prompt.append(sorted(only))
        return await periodic(copier, only)

    monkeypatch.setattr(reconcile, "reconcile_accounts", spy)

    async def go():
        async with Copier(name="test-copier", config=world.config) as copier:
            await copier.refresh(start_watches=False)
            for _ in range(2):  # the order book shows the hand sell on every poll: acted on once
                for account_id in accounts:
                    await copier.poll_follower(Watch(account_id, copier._client(account_id)))
                if copier._hand_task is not None:
                    await copier._hand_task

    asyncio.run(go())
    assert prompt == [[accounts[0]]]  # the other follower's book has only our copy
    assert [ledger_of(f) for f in world.followers] == [4, 10]


def _copied(world) -> list[int | None]:
    rows = dict(
        PositionLedger.objects.filter(trading_symbol="INFY-EQ").values_list(
            "follower_id", "net_quantity"
        )
    )
    return [rows.get(f.pk) for f in world.followers]


def test_shares_the_follower_holds_beyond_the_ledger_are_its_own(make_world):
    world = make_world({})
    (f,) = world.followers
    world.tick()
    world.place("INFY-EQ", "BUY", 10)
    world.tick(2)
    world.sbx.place_order(world.client_of(f), "NSE", "INFY-EQ", "BUY", 5)  # its own shares
    assert world.net_of(f, "INFY-EQ") == 15

    result = run_reconciliation(world)
    assert not result.reduced and not result.drifts
    assert ledger_of(f) == 10
    assert not AuditEvent.objects.filter(action="ledger.closed_outside").exists()

    orders_before = len(world.orders_of(f))
    world.place("INFY-EQ", "SELL", 10)
    world.tick(2)
    (exit_copy,) = CopyTrade.objects.filter(follower=f, intent="exit")
    assert (exit_copy.status, exit_copy.quantity) == ("SUCCESS", 10)
    assert new_orders(world, f, orders_before) == [("SELL", "INFY-EQ", 10)]
    assert world.net_of(f, "INFY-EQ") == 5 and ledger_of(f) == 0  # its own 5 stay

    # it sells 8 by hand from 15 (copied and own alike): the broker holds 7, so the ledger
    # (copied 10 again) counts 7; which shares were sold cannot be told, never more than held
    world.place("INFY-EQ", "BUY", 10)
    world.tick(2)
    assert world.net_of(f, "INFY-EQ") == 15 and ledger_of(f) == 10
    world.sbx.place_order(world.client_of(f), "NSE", "INFY-EQ", "SELL", 8)
    run_reconciliation(world)
    assert ledger_of(f) == 7
    world.place("INFY-EQ", "SELL", 10)
    world.tick(2)
    assert world.net_of(f, "INFY-EQ") == 0 and ledger_of(f) == 0


def test_the_ledger_is_reduced_to_the_brokers_side_only():
    assert reconcile.reduced_ledger(10, 4) == 4
    assert reconcile.reduced_ledger(10, 0) == 0
    assert reconcile.reduced_ledger(10, -3) == 0  # the other side: never a sign change
    assert reconcile.reduced_ledger(10, 15) == 10  # never increased
    assert reconcile.reduced_ledger(-10, -4) == -4
    assert reconcile.reduced_ledger(-10, 2) == 0
    assert reconcile.reduced_ledger(-10, -12) == -10
    assert reconcile.reduced_ledger(10, None) == 10  # not read: unchanged
    assert reconcile.reduced_ledger(0, -5) == 0


def _broker(net: int, product: str = "MIS") -> list[Position]:
    return [
        Position(
            exchange="NSE",
            token="1594",
            trading_symbol="INFY-EQ",
            product=BrokerProduct(product),
            net_quantity=net,
            buy_quantity=max(net, 0),
            sell_quantity=max(-net, 0),
            buy_average=None,
            sell_average=None,
            net_average=None,
            realised_pnl=None,
            unrealised_pnl=None,
            ltp=None,
        )
    ]


def _position(product: str = "MIS", net: int = 10, **fields):
    follower = FollowerFactory(lot_multiplier=Decimal(1))
    account = BrokerAccountFactory(owner=follower.user, master=follower.master)
    row = PositionLedger.objects.create(
        master=follower.master,
        follower=follower,
        exchange="NSE",
        token="1594",
        trading_symbol="INFY-EQ",
        product=product,
        net_quantity=net,
        open_value=Decimal(1500) * net,
        **fields,
    )
    return follower, account, row


def _reconcile(account, positions: list[Position]) -> reconcile.Reconciled:
    now = clock.now()
    return reconcile.reconcile_all({account.pk: positions}, read_at=now, now=now)


def test_nothing_at_work_on_the_position_is_a_condition_of_the_reduction(db):
    # an exit claimed (reserved) on it: not reduced, not reported (it is moving)
    follower, account, row = _position(exit_reserved=3)
    result = _reconcile(account, _broker(4))
    row.refresh_from_db()
    assert row.net_quantity == 10 and not result.reduced and not result.drifts
    # an exit decided and not sent yet: moving, left alone
    PositionLedger.objects.filter(pk=row.pk).update(exit_reserved=0)
    pending = CopyTradeFactory(follower=follower, side="SELL", intent="exit", status="PENDING")
    assert not _reconcile(account, _broker(4)).reduced
    # nothing at work any more: reduced to the broker's 4, the average open price kept
    CopyTrade.objects.filter(pk=pending.pk).update(status="FAILED", broker_final=True)
    result = _reconcile(account, _broker(4))
    row.refresh_from_db()
    assert result.reduced == [row.pk]
    assert (row.net_quantity, row.open_value) == (4, Decimal(6000))
    (audit,) = AuditEvent.objects.filter(action="ledger.closed_outside")
    assert audit.target_id == str(row.pk) and audit.actor is None
    assert (audit.before["net_quantity"], audit.after["net_quantity"]) == (10, 4)


def test_the_reduction_loses_to_a_ledger_that_moved_since_it_was_read(db):
    follower, _, row = _position()
    stale = reconcile.LedgerRead(row.pk, 10, row.open_value, row.updated_at - timedelta(seconds=1))
    assert not reconcile._reduce(follower.master, stale, 4, 4, now=clock.now())
    seen = reconcile.LedgerRead(row.pk, 9, row.open_value, row.updated_at)  # a fill since
    assert not reconcile._reduce(follower.master, seen, 4, 4, now=clock.now())
    row.refresh_from_db()
    assert row.net_quantity == 10
    assert not AuditEvent.objects.filter(action="ledger.closed_outside").exists()
    fresh = reconcile.LedgerRead(row.pk, 10, row.open_value, row.updated_at)
    assert reconcile._reduce(follower.master, fresh, 4, 4, now=clock.now())
    row.refresh_from_db()
    assert row.net_quantity == 4
    assert not reconcile._reduce(follower.master, fresh, 0, 0, now=clock.now())  # used up


def test_a_short_copied_position_bought_back_by_hand_is_reduced_too(db):
    _, account, row = _position(net=-10)
    _reconcile(account, _broker(-3))
    row.refresh_from_db()
    assert row.net_quantity == -3
    _reconcile(account, _broker(5))  # the follower bought beyond flat: its own long
    row.refresh_from_db()
    assert row.net_quantity == 0


def test_a_book_without_the_positions_row_is_reported_not_read_as_closed(db):
    # no row for it today (an earlier day's position, a token spelt otherwise): not reduced
    _, account, row = _position()
    other = _broker(4)[0]
    _reconcile(account, [replace(other, token="99999", trading_symbol="SBIN-EQ")])
    _reconcile(account, [replace(other, token="1594.0")])  # a token spelt otherwise
    # a row of this instrument with a product that cannot be read: not trusted either
    _reconcile(account, [*_broker(4), replace(other, product=None, net_quantity=6)])
    row.refresh_from_db()
    assert row.net_quantity == 10
    assert not AuditEvent.objects.filter(action="ledger.closed_outside").exists()
    (drift,) = PositionDrift.objects.all()  # still reported
    assert drift.ledger_net == 10
    # the book shows it: reduced
    _reconcile(account, _broker(4))
    row.refresh_from_db()
    assert row.net_quantity == 4


def test_a_delivery_position_is_reported_not_reduced(db):
    # CNC bought on an earlier day is in the holdings, not the position book: a book without
    # it cannot tell a hand close, so the ledger is left alone and the drift only reported
    _, account, row = _position(product="CNC")
    _reconcile(account, _broker(0, product="CNC"))
    row.refresh_from_db()
    assert row.net_quantity == 10
    (drift,) = PositionDrift.objects.all()
    assert (drift.ledger_net, drift.broker_net, drift.closed_by_hand) == (10, 0, 10)
    assert not AuditEvent.objects.filter(action="ledger.closed_outside").exists()
