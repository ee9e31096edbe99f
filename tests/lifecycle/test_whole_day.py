"""Issue 5's "done when": in the sandbox, a master's whole day — entries, a modified limit
order, a cancelled order, partial exits, a full exit, a mid-day session expiry (the master's
and a follower's) — leaves every follower with positions equal to the master's scaled
positions (rounding reported) and no stray open orders.

Both copy modes (mirror orders: the followers' orders are modified and cancelled with the
master's; copy fills: only fills are copied, so a modification or a cancel has nothing to
mirror), three followers (x1, x2, x0.5), equities and a lot-traded future, the real copier's
tick against the sandbox over real sockets."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from tests.engine.conftest import nifty_future
from trading.models import Alert, BrokerSession, CopyTrade, MasterOrderEvent, PositionLedger

Status = CopyTrade.Status
FUNDS = "10000000000"
LIMITS = {
    "max_order_value": Decimal("900000000"),
    "max_daily_loss": Decimal("900000000"),
    "max_quantity": 100000,
    "funds": FUNDS,
}
MULTIPLIERS = (Decimal("1"), Decimal("2"), Decimal("0.5"))
LIVE = ("OPEN", "TRIGGER_PENDING", "AMO", "PENDING")


def _net(sbx, client_id, symbol):  # type: ignore[no-untyped-def]
    return sum(
        int(p["net_quantity"]) for p in sbx.positions(client_id) if p["trading_symbol"] == symbol
    )


def _open_orders(sbx, client_id):  # type: ignore[no-untyped-def]
    return [o for o in sbx.orders(client_id) if o["status"] in LIVE]


@pytest.mark.parametrize("mode", ["mirror", "fills"])
def test_a_masters_whole_day_leaves_every_follower_at_the_scaled_positions(
    make_world, record_property, mode
):
    mirror = mode == "mirror"
    world = make_world(*({"lot_multiplier": m, **LIMITS} for m in MULTIPLIERS), copy_mode=mode)
    sbx = world.sbx
    sbx.update_account(world.master_client, funds=FUNDS)
    future = nifty_future(sbx)
    nifty, lot = future["trading_symbol"], int(future["lot_size"])
    symbols = ("INFY-EQ", "SBIN-EQ", nifty)
    x1, x2, half = world.followers
    world.tick()  # the day's baseline: nothing held, nothing open

    # --- entries: a long, a short, a future (x0.5 of 3 lots rounds down to 1 lot) -----------
    world.place("INFY-EQ", "BUY", 10)
    world.place("SBIN-EQ", "SELL", 6)
    world.place(nifty, "BUY", 3 * lot)
    world.tick(2)
    assert [_net(sbx, world.client_of(f), "INFY-EQ") for f in world.followers] == [10, 20, 5]
    assert [_net(sbx, world.client_of(f), nifty) for f in world.followers] == [
        3 * lot,
        6 * lot,
        lot,
    ]

    # --- a modified limit order: rests, is raised and re-priced, then fills ---------------
    resting = world.place("INFY-EQ", "BUY", 5, order_type="LIMIT", price="1400")
    world.tick(2)
    sbx.modify_order(world.master_client, resting["order_no"], quantity=8, price="1450")
    world.tick(2)
    for follower, quantity in zip(world.followers, (8, 16, 4), strict=True):
        if not mirror:  # copy fills: nothing is copied before the master's order fills
            assert _open_orders(sbx, world.client_of(follower)) == []
            continue
        (order,) = _open_orders(sbx, world.client_of(follower))
        assert (order["quantity"], Decimal(order["price"])) == (quantity, Decimal("1450"))
    sbx.set_price("NSE", "INFY-EQ", "1440")  # the master's and the followers' limits fill
    world.tick(2)
    sbx.set_price("NSE", "INFY-EQ", "1500")

    # --- a cancelled order: the followers' copies are cancelled too -------------------------
    cancelled = world.place("SBIN-EQ", "SELL", 4, order_type="LIMIT", price="900")
    world.tick(2)
    opened = 1 if mirror else 0
    assert all(len(_open_orders(sbx, world.client_of(f))) == opened for f in world.followers)
    sbx.cancel_order(world.master_client, cancelled["order_no"])
    world.tick(2)

    # --- mid-day: AliceBlue ends the master's and a follower's sessions ----------------------
    obtained = {
        c: BrokerSession.objects.get(account__client_id=c).obtained_at
        for c in (world.master_client, world.client_of(x2))
    }
    assert sbx.expire_sessions(world.master_client) >= 1
    assert sbx.expire_sessions(world.client_of(x2)) >= 1
    world.tick()  # the copier finds out (the master's poll gets EC087) and logs in again

    # --- partial exits (x0.5 of half of 9 rounds down), then a full exit ------------------
    world.place("INFY-EQ", "SELL", 9)
    world.place(nifty, "SELL", lot)
    world.tick(2)
    world.place("SBIN-EQ", "BUY", 6)  # the master is flat in SBIN: every follower is too
    world.tick(2)
    world.tick()  # followers' last fills tracked

    # --- the day's end state ----------------------------------------------------------------
    for client_id, before in obtained.items():  # both logged in again by the copier
        session = BrokerSession.objects.get(account__client_id=client_id)
        assert session.state == BrokerSession.State.READY and session.obtained_at != before
    master = {s: _net(sbx, world.master_client, s) for s in symbols}
    assert master == {"INFY-EQ": 9, "SBIN-EQ": 0, nifty: 2 * lot}
    report = []
    for follower, multiplier in zip(world.followers, MULTIPLIERS, strict=True):
        client_id = world.client_of(follower)
        assert _open_orders(sbx, client_id) == [], f"stray open orders for {follower}"
        for symbol in symbols:
            held = _net(sbx, client_id, symbol)
            exact = Fraction(master[symbol]) * Fraction(multiplier)
            step = lot if symbol == nifty else 1
            rounding = held - exact
            report.append(f"{follower.display_name} x{multiplier} {symbol}: {held} vs {exact}")
            # equal to the scaled position up to the lot rounding, never beyond it; flat
            # when the master is flat
            assert abs(rounding) < step, report[-1]
            assert (held == 0) == (master[symbol] == 0), report[-1]
            ledger = PositionLedger.objects.filter(follower=follower, trading_symbol=symbol)
            assert sum(row.net_quantity for row in ledger) == held  # the ledger agrees
    record_property("rounding", "; ".join(report))
    print("\n".join(report))
    # whole multipliers are exact; x0.5 rounds down (whole shares / whole lots)
    assert [_net(sbx, world.client_of(f), "INFY-EQ") for f in (x1, x2)] == [9, 18]
    assert _net(sbx, world.client_of(half), "INFY-EQ") == 5  # 4.5 held as 5: reported
    assert _net(sbx, world.client_of(half), nifty) == lot  # 1 lot for 1 master lot x 0.5
    # every copy settled; the modify and the cancel went to every follower, once
    assert not CopyTrade.objects.filter(status__in=(Status.PENDING, Status.SENDING)).exists()
    assert not CopyTrade.objects.filter(status__in=(Status.FAILED, Status.UNKNOWN)).exists()
    for action in ("modify", "cancel"):
        done = CopyTrade.objects.filter(action=action, status=Status.SUCCESS)
        assert sorted(done.values_list("follower_id", flat=True)) == (
            sorted(f.pk for f in world.followers) if mirror else []
        )
    assert not Alert.objects.filter(kind__in=("copy_failed", "unknown_order")).exists()
    changes = MasterOrderEvent.objects.filter(kind__in=("modified", "cancelled"))
    assert changes.count() == 2
    for event in changes:
        assert ("mirrored" in event.outcome_note) == mirror
        assert ("nothing to mirror" in event.outcome_note) == (not mirror)
