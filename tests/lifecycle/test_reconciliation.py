"""Reconciliation against the sandbox over real sockets: each follower's copied positions (the
ledger and its broker account) against the master's, scaled. Drift is reported once; with the
close policy exactly the drift the master no longer holds is closed, never what the follower
closed by hand, and nothing is ever opened."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse

from accounts.models import Master
from copytrade.lib import clock
from tests.conftest import login
from tests.factories import CopyTradeFactory, FollowerFactory
from trading.brokers.aliceblue import budget
from trading.engine.alerts import raise_alert
from trading.engine.lifecycle import reconcile
from trading.engine.runner import Copier
from trading.models import (
    Alert,
    AlertKind,
    AuditEvent,
    CopyTrade,
    PositionDrift,
    PositionLedger,
    RequestBudget,
)


def run_reconciliation(world) -> reconcile.Reconciled:
    """One pass of the copier's reconciliation job (its clients, its DB thread), closes sent."""

    async def go() -> reconcile.Reconciled:
        async with Copier(name="test-copier", config=world.config) as copier:
            await copier.refresh(start_watches=False)
            result = await reconcile.reconcile_job(copier)
            await copier.drain(timeout=20)
            return result

    return asyncio.run(go())


def drifts(world) -> dict[tuple[str, str], PositionDrift]:
    return {
        (d.follower.display_name, d.trading_symbol): d
        for d in PositionDrift.objects.filter(
            master=world.master, resolved_at__isnull=True
        ).select_related("follower")
    }


def test_drift_is_reported_once_and_the_close_policy_closes_exactly_it(make_world, settings):
    settings.COPIER_STALENESS_SECONDS = 2
    world = make_world({}, {})
    alice, bob = world.followers
    sbx = world.sbx
    world.tick()
    world.place("INFY-EQ", "BUY", 10)
    world.place("SBIN-EQ", "BUY", 6)
    world.tick(2)
    assert [world.net_of(f, s) for f in (alice, bob) for s in ("INFY-EQ", "SBIN-EQ")] == [
        10,
        6,
        10,
        6,
    ]
    # nothing drifts while everything matches
    result = run_reconciliation(world)
    assert result.compared == 4 and not result.drifts

    # followers close by hand: bob 4 of his INFY, alice all of her SBIN
    sbx.place_order(world.client_of(bob), "NSE", "INFY-EQ", "SELL", 4)
    sbx.place_order(world.client_of(alice), "NSE", "SBIN-EQ", "SELL", 6)
    # the master leaves INFY, found too late to copy (it is proposed, not sent)
    world.place("INFY-EQ", "SELL", 10)
    time.sleep(2.3)
    world.tick()
    assert CopyTrade.objects.filter(reason_code="late_exit").count() == 2
    orders_before = {f.pk: len(world.orders_of(f)) for f in world.followers}

    # mirroring already told the master about alice's INFY (its copy filled before a master
    # change): the drift takes that alert over rather than telling it twice
    alice_buy = CopyTrade.objects.get(follower=alice, trading_symbol="INFY-EQ", side="BUY")
    told = raise_alert(
        kind=AlertKind.DRIFT,
        master_id=world.master.pk,
        follower_id=alice.pk,
        copy_trade_id=alice_buy.pk,
        message="mirroring: the follower's copy already filled",
        at=clock.now(),
    )

    # report only (the default): three drifts, alerted once, nothing sent
    assert world.master.reconcile_policy == Master.ReconcilePolicy.REPORT
    run_reconciliation(world)
    found = drifts(world)
    assert set(found) == {
        (alice.display_name, "INFY-EQ"),
        (bob.display_name, "INFY-EQ"),
        (alice.display_name, "SBIN-EQ"),
    }
    a_infy = found[(alice.display_name, "INFY-EQ")]
    b_infy = found[(bob.display_name, "INFY-EQ")]
    a_sbin = found[(alice.display_name, "SBIN-EQ")]
    assert (a_infy.master_net, a_infy.expected, a_infy.ledger_net, a_infy.broker_net) == (
        0,
        0,
        10,
        10,
    )
    assert (a_infy.closed_by_hand, a_infy.to_close) == (0, 10)
    assert a_infy.alert_id == told.pk
    # bob's hand close of 4: the ledger now counts what the broker still holds (6), reported
    assert (b_infy.ledger_net, b_infy.broker_net, b_infy.closed_by_hand, b_infy.to_close) == (
        6,
        6,
        4,
        6,
    )
    assert "closed 4 outside copytrade" in b_infy.note
    # the master still holds SBIN: alice's hand close is reported, never re-opened
    assert (a_sbin.expected, a_sbin.ledger_net, a_sbin.broker_net) == (6, 0, 0)
    assert (a_sbin.closed_by_hand, a_sbin.to_close) == (6, 0)
    ledgers = {
        (row.follower_id, row.trading_symbol): row.net_quantity
        for row in PositionLedger.objects.all()
    }
    assert ledgers == {
        (alice.pk, "INFY-EQ"): 10,
        (alice.pk, "SBIN-EQ"): 0,
        (bob.pk, "INFY-EQ"): 6,
        (bob.pk, "SBIN-EQ"): 6,
    }
    reductions = AuditEvent.objects.filter(action="ledger.closed_outside").order_by("pk")
    assert sorted((a.before["net_quantity"], a.after["net_quantity"]) for a in reductions) == [
        (6, 0),
        (10, 6),
    ]
    assert {a.after["reason"] for a in reductions} == {"closed outside copytrade"}
    assert Alert.objects.filter(kind="drift").count() == 3
    run_reconciliation(world)  # still drifting: no new alert, no new row, no new reduction
    assert Alert.objects.filter(kind="drift").count() == 3
    assert PositionDrift.objects.count() == 3
    assert drifts(world)[(bob.display_name, "INFY-EQ")].closed_by_hand == 4  # still shown
    assert reductions.count() == 2
    assert {f.pk: len(world.orders_of(f)) for f in world.followers} == orders_before

    # the dashboard shows it, and the master switches to the close policy there
    client = login(Client(), world.master.user)
    page = client.get(reverse("trading:master_dashboard")).content.decode()
    assert f'id="drift-{a_infy.pk}"' in page
    response = client.post(reverse("trading:master_reconcile_policy"), {"policy": "close"})
    assert response.status_code == 302
    world.master.refresh_from_db()
    assert world.master.reconcile_policy == "close"
    assert AuditEvent.objects.filter(action="master.reconcile_policy").count() == 1

    run_reconciliation(world)
    world.tick()  # track the closes' fills into the ledger
    # exactly the drift was closed: alice's 10, bob's remaining 6; nothing bought anywhere
    assert world.net_of(alice, "INFY-EQ") == 0
    assert world.net_of(bob, "INFY-EQ") == 0
    assert world.net_of(alice, "SBIN-EQ") == 0
    assert world.net_of(bob, "SBIN-EQ") == 6
    new_orders = {
        f.pk: [(o["side"], o["trading_symbol"], int(o["quantity"])) for o in world.orders_of(f)]
        for f in world.followers
    }
    assert new_orders[alice.pk][orders_before[alice.pk] :] == [("SELL", "INFY-EQ", 10)]
    assert new_orders[bob.pk][orders_before[bob.pk] :] == [("SELL", "INFY-EQ", 6)]
    closes = CopyTrade.objects.filter(event__master_order__broker_order_id__startswith="RECONCILE-")
    assert sorted(c.quantity for c in closes) == [6, 10]
    assert all(c.status == "SUCCESS" and c.intent == "exit" for c in closes)

    # the next pass: both INFY drifts are resolved (the ledger no longer counts bob's hand
    # close); alice's hand-closed SBIN stays reported while the master holds it, never re-opened
    run_reconciliation(world)
    world.tick()
    for d in (a_infy, b_infy):
        d.refresh_from_db()
        assert d.resolved_at is not None and d.status == "resolved"
        assert Alert.objects.get(pk=d.alert_id).resolved_at is not None
    left = drifts(world)
    assert set(left) == {(alice.display_name, "SBIN-EQ")}
    assert left[(alice.display_name, "SBIN-EQ")].closed_by_hand == 6
    assert PositionLedger.objects.get(follower=bob, trading_symbol="INFY-EQ").net_quantity == 0
    assert closes.count() == 2  # no second close
    assert world.net_of(bob, "INFY-EQ") == 0 and world.net_of(alice, "SBIN-EQ") == 0
    assert PositionLedger.objects.get(follower=alice, trading_symbol="INFY-EQ").net_quantity == 0


def test_expected_positions_follow_the_sizing_rules():
    half = Decimal("0.5")
    assert reconcile.expected_position(10, multiplier=half, lot_size=1, max_quantity=100) == 5
    assert reconcile.expected_position(-7, multiplier=half, lot_size=1, max_quantity=100) == -3
    assert reconcile.expected_position(1, multiplier=half, lot_size=1, max_quantity=100) == 1
    assert reconcile.expected_position(10, multiplier=Decimal(2), lot_size=1, max_quantity=8) == 8
    assert reconcile.expected_position(0, multiplier=half, lot_size=1, max_quantity=8) == 0
    assert reconcile.expected_position(300, multiplier=half, lot_size=75, max_quantity=900) == 150


def test_the_comparison_never_closes_what_is_not_held():
    # master flat, follower closed everything by hand: drift reported, nothing to close
    c = reconcile.compare(master_net=0, expected=0, ledger_net=5, broker_net=0)
    assert c.drift and c.closed_by_hand == 5 and c.to_close == 0
    # master flat, broker unknown: never closed blind
    c = reconcile.compare(master_net=0, expected=0, ledger_net=5, broker_net=None)
    assert c.drift and c.to_close == 0
    # master on the other side: the copied long is closed, the short is never opened
    c = reconcile.compare(master_net=-4, expected=-4, ledger_net=5, broker_net=7)
    assert c.to_close == 5
    # master still holds (rounding, caps): reported only
    c = reconcile.compare(master_net=10, expected=5, ledger_net=6, broker_net=6)
    assert c.drift and c.to_close == 0
    # the follower's own extra shares at the broker are not drift
    c = reconcile.compare(master_net=10, expected=10, ledger_net=10, broker_net=15)
    assert not c.drift
    # a copy that never happened (ledger 0): reported, nothing opened
    c = reconcile.compare(master_net=10, expected=10, ledger_net=0, broker_net=0)
    assert c.drift and c.to_close == 0


def test_bad_input_to_the_policy_form_is_refused(master_x):
    client = login(Client(), master_x.user)
    url = reverse("trading:master_reconcile_policy")
    assert client.post(url, {"policy": "flatten-everything"}).status_code == 400
    assert client.get(url).status_code == 405
    master_x.refresh_from_db()
    assert master_x.reconcile_policy == "report"
    response = client.post(url, {"policy": "close"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'id="drift"' in response.content.decode()
    master_x.refresh_from_db()
    assert master_x.reconcile_policy == "close"


def test_without_budget_for_the_brokers_book_nothing_is_closed_blind(make_world, settings):
    settings.COPIER_STALENESS_SECONDS = 2
    world = make_world({})
    (alice,) = world.followers
    Master.objects.filter(pk=world.master.pk).update(reconcile_policy="close")
    world.tick()
    world.place("INFY-EQ", "BUY", 10)
    world.tick(2)
    world.place("INFY-EQ", "SELL", 10)
    time.sleep(2.3)
    world.tick()  # found late: not copied, the follower still holds 10
    account = alice.user.broker_account
    window = budget.window_start(clock.now())
    RequestBudget.objects.update_or_create(
        account=account, window_start=window, defaults={"used": budget.budget_limit() - 5}
    )
    run_reconciliation(world)
    (drift,) = drifts(world).values()
    assert (drift.ledger_net, drift.broker_net, drift.to_close) == (10, None, 0)
    assert drift.close_event_id is None and world.net_of(alice, "INFY-EQ") == 10
    # with budget again the broker's book is read and the drift closed
    RequestBudget.objects.filter(account=account).update(used=0)
    stale = PositionDrift.objects.get(pk=drift.pk)  # as a second copier read it
    run_reconciliation(world)
    drift.refresh_from_db()
    assert drift.broker_net == 10 and drift.to_close == 10 and drift.status == "closing"
    # a second copier that read the drift before this close cannot decide it again
    copies = CopyTrade.objects.count()
    with pytest.raises(IntegrityError), transaction.atomic():
        reconcile._close(
            world.master,
            alice,
            ("NSE", stale.token, stale.product),
            "INFY-EQ",
            reconcile.compare(master_net=0, expected=0, ledger_net=10, broker_net=10),
            stale,
            1,
            None,
            clock.now(),
        )
    assert CopyTrade.objects.count() == copies
    world.tick()
    assert world.net_of(alice, "INFY-EQ") == 0


def test_a_position_with_a_copy_at_work_is_moving_not_drifting(db):
    follower = FollowerFactory(lot_multiplier=Decimal(1))
    master = follower.master
    key = {"exchange": "NSE", "token": "1594", "product": "MIS"}
    PositionLedger.objects.create(
        master=master, follower=follower, trading_symbol="INFY-EQ", net_quantity=10, **key
    )
    # the master is flat and the follower's exit is still PENDING: not a drift (yet)
    exit_copy = CopyTradeFactory(follower=follower, side="SELL", intent="exit", status="PENDING")
    result = reconcile.reconcile_all({}, read_at=clock.now(), now=clock.now())
    assert result.compared == 0 and not PositionDrift.objects.exists()
    # it went nowhere (refused): now the copied 10 the master no longer holds is a drift
    CopyTrade.objects.filter(pk=exit_copy.pk).update(status="FAILED", broker_final=True)
    result = reconcile.reconcile_all({}, read_at=clock.now(), now=clock.now())
    (drift,) = PositionDrift.objects.all()
    assert (drift.expected, drift.ledger_net, drift.broker_net) == (0, 10, None)
    assert result.compared == 1 and result.alerted == [drift.pk]
