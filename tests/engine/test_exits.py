"""Exits: proportional to the master's reduction, whole lots, never more than the position
ledger holds, never blocked by an entry check (paused followers included), sent first."""

from __future__ import annotations

from decimal import Decimal

from accounts.models import BrokerAccount, Follower
from copytrade.lib import clock
from tests.engine.conftest import account_of, nifty_future
from tests.engine.helpers import expire_oauth_session
from trading.engine.reasons import Reason
from trading.models import CopyTrade, DailyPnl, PositionLedger

Status = CopyTrade.Status
BIG = {"max_order_value": Decimal("900000000"), "max_quantity": 10000}


def test_an_exit_passes_every_entry_check_of_a_paused_follower(make_world):
    world = make_world({})
    (follower,) = world.followers
    world.tick()
    world.place("INFY-EQ", "BUY", 10)
    world.tick(2)
    assert world.net_of(follower, "INFY-EQ") == 10
    # now everything that blocks entries is on
    Follower.objects.filter(pk=follower.pk).update(
        is_paused=True,
        max_order_value=Decimal("1"),
        max_quantity=1,
        allowed_product_types=["CNC"],
        allowed_instruments=["NSE:SBIN"],
    )
    world.master.entries_paused = True
    world.master.save()
    DailyPnl.objects.create(
        account=account_of(follower),
        trading_day=clock.today_ist(),
        realised=Decimal("-1000000"),
        as_of=clock.now(),
    )
    world.place("INFY-EQ", "SELL", 10)
    world.tick(2)
    assert world.net_of(follower, "INFY-EQ") == 0
    exit_copy = world.copies(follower)[-1]
    assert exit_copy.intent == "exit" and exit_copy.status == Status.SUCCESS
    assert exit_copy.quantity == 10
    # an entry in the same state is refused (paused first)
    world.place("INFY-EQ", "BUY", 1)
    world.tick()
    assert world.copies(follower)[-1].reason_code == Reason.FOLLOWER_PAUSED


def test_proportional_exits_in_whole_lots_and_flat_means_flat(make_world):
    world = make_world({"lot_multiplier": Decimal("1.5"), **BIG}, funds="1000000000")
    (follower,) = world.followers
    world.sbx.update_account(world.client_of(follower), funds="1000000000")
    future = nifty_future(world.sbx)["trading_symbol"]
    world.tick()
    world.place(future, "BUY", 260)  # 4 lots; the follower 6 lots
    world.tick(2)
    assert world.net_of(follower, future) == 390
    world.place(future, "SELL", 65)  # 25% -> 1.5 lots -> 1 lot
    world.tick(2)
    assert world.net_of(follower, future) == 325
    world.place(future, "SELL", 195)  # master flat -> follower flat, whatever the rounding
    world.tick(2)
    assert world.net_of(follower, future) == 0
    ledger = PositionLedger.objects.get(follower=follower)
    assert ledger.net_quantity == 0 and ledger.exit_reserved == 0
    exits = [c for c in world.copies(follower) if c.intent == "exit"]
    assert [c.quantity for c in exits] == [65, 325]
    assert "master flat" in exits[-1].sizing_note


def test_an_exit_never_sells_more_than_the_ledger_holds(make_world):
    world = make_world({"lot_multiplier": Decimal("0.5")})
    (follower,) = world.followers
    world.sbx.set_price("NSE", "INFY-EQ", "1500")
    world.tick()
    world.place("INFY-EQ", "BUY", 10)
    world.tick(2)
    assert world.net_of(follower, "INFY-EQ") == 5
    # two resting exits of the whole position: the second finds nothing left to exit
    world.place("INFY-EQ", "SELL", 10, order_type="LIMIT", price="1600")
    world.tick()
    world.place("INFY-EQ", "SELL", 10, order_type="LIMIT", price="1600")
    world.tick(2)
    sells = [o for o in world.orders_of(follower) if o["side"] == "SELL"]
    assert [o["quantity"] for o in sells] == [5]
    first, second = [c for c in world.copies(follower) if c.intent == "exit"]
    assert first.status == Status.SUCCESS and first.quantity == 5
    assert second.status == Status.SKIPPED and second.reason_code == Reason.NOTHING_TO_EXIT
    ledger = PositionLedger.objects.get(follower=follower)
    assert ledger.net_quantity == 5 and ledger.exit_reserved == 5
    # the exit fills: the reservation becomes the fill
    world.sbx.set_price("NSE", "INFY-EQ", "1601")
    world.sbx.step()
    world.tick(2)
    ledger.refresh_from_db()
    assert ledger.net_quantity == 0 and ledger.exit_reserved == 0
    assert world.net_of(follower, "INFY-EQ") == 0


def test_no_position_nothing_to_exit(make_world):
    world = make_world({"is_paused": True}, {})
    paused, active = world.followers
    world.tick()
    world.place("INFY-EQ", "BUY", 4)
    world.tick(2)
    world.place("INFY-EQ", "SELL", 4)
    world.tick(2)
    entry, exit_copy = world.copies(paused)
    assert entry.reason_code == Reason.FOLLOWER_PAUSED
    assert exit_copy.status == Status.SKIPPED and exit_copy.reason_code == Reason.FOLLOWER_FLAT
    assert world.orders_of(paused) == []
    assert world.net_of(active, "INFY-EQ") == 0 and len(world.orders_of(active)) == 2


def test_a_reversal_sends_its_exit_first(make_world):
    world = make_world({})
    (follower,) = world.followers
    world.tick()
    world.place("INFY-EQ", "BUY", 3)
    world.tick(2)
    world.place("INFY-EQ", "SELL", 5)  # closes 3, opens a short of 2
    world.tick(2)
    assert world.net_of(follower, "INFY-EQ") == -2
    exit_copy, entry_copy = world.copies(follower)[1:]
    assert (exit_copy.intent, exit_copy.quantity, exit_copy.leg) == ("exit", 3, 0)
    assert (entry_copy.intent, entry_copy.quantity, entry_copy.leg) == ("entry", 2, 1)
    by_tag = {o["tag"]: o["order_no"] for o in world.orders_of(follower)}
    assert by_tag[exit_copy.tag] < by_tag[entry_copy.tag]


def test_an_exit_waits_for_a_login_and_then_goes(make_world):
    world = make_world({})
    (follower,) = world.followers
    world.tick()
    world.place("INFY-EQ", "BUY", 2)
    world.tick(2)
    # an AliceBlue-login (OAuth) account cannot be logged in by the copier: it needs its owner
    account = account_of(follower)
    expire_oauth_session(account)
    world.place("INFY-EQ", "SELL", 2)
    world.tick()
    exit_copy = world.copies(follower)[-1]
    assert exit_copy.status == Status.PENDING and exit_copy.reason_code == Reason.NEEDS_LOGIN
    assert "waiting" in exit_copy.reason
    assert world.net_of(follower, "INFY-EQ") == 2
    world.tick()  # still no session: it keeps waiting, quietly
    exit_copy.refresh_from_db()
    assert exit_copy.status == Status.PENDING and exit_copy.transitions.count() == 1
    # back to an API-key account: the copier logs it in by itself, and the exit goes
    BrokerAccount.objects.filter(pk=account.pk).update(login_method="api_key")
    CopyTrade.objects.filter(pk=exit_copy.pk).update(next_attempt_at=clock.now())
    world.tick(2)
    exit_copy.refresh_from_db()
    assert exit_copy.status == Status.SUCCESS
    assert world.net_of(follower, "INFY-EQ") == 0
