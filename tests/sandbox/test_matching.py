"""Matching, margin, hours and holidays, AMO, partial fills and P&L (driven through the
harness and checked over HTTP)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sandbox.clock import IST
from tests.sandbox.helpers import g3, g3_login


def test_partial_fills_step_by_step(sandbox, sandbox_account):
    cid = sandbox_account.client_id
    sandbox.set_matching(cid, partial_fill_qty=2)
    order = sandbox.place_order(cid, "NSE", "SBIN-EQ", "BUY", 5)
    assert (order["status"], order["filled_quantity"]) == ("OPEN", 2)
    sandbox.step()
    assert sandbox.orders(cid)[0]["filled_quantity"] == 4
    sandbox.step()
    (done,) = sandbox.orders(cid)
    assert (done["status"], done["filled_quantity"]) == ("COMPLETE", 5)
    assert [t["quantity"] for t in sandbox.trades(cid)] == [2, 2, 1]
    other = sandbox.create_account(daily_login=True)
    assert sandbox.place_order(other.client_id, "NSE", "SBIN-EQ", "BUY", 5)["status"] == "COMPLETE"


def test_partial_fill_is_visible_in_the_g3_book(sandbox, sandbox_account):
    sandbox.set_matching(partial_fill_qty=1)
    sandbox.place_order(sandbox_account.client_id, "NSE", "SBIN-EQ", "SELL", 3)
    (row,) = g3(sandbox, "GET", "orders/book", g3_login(sandbox, sandbox_account)).json()["result"]
    assert (row["orderStatus"], row["filledQuantity"], row["pendingQuantity"]) == ("OPEN", 1, 2)


def test_ioc_limit_that_cannot_fill_is_cancelled(sandbox, sandbox_account):
    sandbox.set_price("NSE", "INFY-EQ", "1500")
    order = sandbox.place_order(
        sandbox_account.client_id,
        "NSE",
        "INFY-EQ",
        "BUY",
        1,
        order_type="LIMIT",
        price="1490",
        validity="IOC",
    )
    assert order["status"] == "CANCELLED" and order["cancelled_quantity"] == 1


def test_short_funds_reject_with_the_rms_text(sandbox):
    acct = sandbox.create_account(funds="10000", daily_login=True)
    sandbox.set_price("NSE", "INFY-EQ", "1500")
    order = sandbox.place_order(acct.client_id, "NSE", "INFY-EQ", "BUY", 10, product="LONGTERM")
    assert order["status"] == "REJECTED"
    assert order["reason"] == (
        f"RED:Margin Shortfall:INR 5,000.00 Available:INR 10,000.00 for C-{acct.client_id} "
        "[ABFSFREEDOM]"
    )
    # MIS needs 20 %: the same order fits
    assert sandbox.place_order(acct.client_id, "NSE", "INFY-EQ", "BUY", 10)["status"] == "COMPLETE"
    # selling what was bought needs no margin
    assert sandbox.place_order(acct.client_id, "NSE", "INFY-EQ", "SELL", 10)["status"] == "COMPLETE"


def test_prices_off_the_tick_are_rejected_by_the_exchange(sandbox, sandbox_account):
    tick = sandbox.instrument("NSE", "HDFCBANK-EQ")["tick_size"]
    assert Decimal(tick) == Decimal("0.05")
    order = sandbox.place_order(
        sandbox_account.client_id,
        "NSE",
        "HDFCBANK-EQ",
        "BUY",
        1,
        order_type="LIMIT",
        price="990.03",
    )
    assert order["status"] == "REJECTED"
    assert order["reason"] == "ORA:Price 990.03 is not a multiple of tick size 0.05 "


def test_freeze_quantity_is_enforced(sandbox, sandbox_account):
    fut = next(
        i
        for i in sandbox.instruments("NFO")
        if i["instrument_type"] == "FUTIDX" and i["trading_symbol"].startswith("BANKNIFTY")
    )
    assert (fut["lot_size"], fut["freeze_qty"]) == (30, 900)
    cid = sandbox_account.client_id
    sandbox.update_account(cid, funds="100000000")
    assert (
        sandbox.place_order(cid, "NFO", fut["token"], "BUY", 900, product="NORMAL")["status"]
        == "COMPLETE"
    )
    too_many = sandbox.place_order(cid, "NFO", fut["token"], "BUY", 930, product="NORMAL")
    assert too_many["status"] == "REJECTED" and "freeze quantity 900" in too_many["reason"]


def test_exchange_hours_and_holidays_when_not_round_the_clock(sandbox, sandbox_account):
    cid = sandbox_account.client_id
    sandbox.set_round_the_clock(False)
    sandbox.set_clock(datetime(2026, 7, 27, 8, 0, tzinfo=IST))  # Monday before the open
    sandbox.daily_login(cid)
    closed = sandbox.place_order(cid, "NSE", "INFY-EQ", "BUY", 1)
    assert closed["status"] == "REJECTED" and "Market is closed" in closed["reason"]
    amo = sandbox.place_order(
        cid, "NSE", "INFY-EQ", "BUY", 1, complexity="AMO", order_type="LIMIT", price="1600"
    )
    assert amo["status"] == "AMO"
    mcx = sandbox.instruments("MCX")[0]
    assert (
        sandbox.place_order(cid, "MCX", mcx["token"], "BUY", 1, product="NORMAL")["status"]
        == "REJECTED"
    )
    sandbox.advance(80 * 60)  # 09:20 IST: the market is open, the AMO is released
    (_, released) = sandbox.orders(cid)[:2]
    assert released["status"] == "COMPLETE"
    assert sandbox.place_order(cid, "NSE", "INFY-EQ", "BUY", 1)["status"] == "COMPLETE"
    resting = sandbox.place_order(cid, "NSE", "INFY-EQ", "BUY", 1, order_type="LIMIT", price="1000")
    sandbox.set_clock(datetime(2026, 7, 27, 15, 31, tzinfo=IST))  # after the close
    assert (
        next(o for o in sandbox.orders(cid) if o["order_no"] == resting["order_no"])["status"]
        == "CANCELLED"
    )
    sandbox.set_clock(datetime(2026, 1, 26, 10, 0, tzinfo=IST))  # Republic Day
    sandbox.daily_login(cid)
    assert sandbox.place_order(cid, "NSE", "INFY-EQ", "BUY", 1)["status"] == "REJECTED"
    sandbox.set_holidays([date(2026, 7, 28)])
    sandbox.set_clock(datetime(2026, 1, 26, 10, 0, tzinfo=IST))
    assert sandbox.place_order(cid, "NSE", "INFY-EQ", "BUY", 1)["status"] == "COMPLETE"


def test_open_day_orders_are_cancelled_when_the_day_ends_round_the_clock(sandbox, sandbox_account):
    cid = sandbox_account.client_id
    sandbox.set_clock(datetime(2026, 7, 27, 23, 50, tzinfo=IST))
    order = sandbox.place_order(cid, "NSE", "INFY-EQ", "BUY", 1, order_type="LIMIT", price="100")
    assert order["status"] == "OPEN"
    sandbox.advance(20 * 60)
    (after,) = sandbox.orders(cid)
    assert after["status"] == "CANCELLED"


def test_positions_realised_and_unrealised_pnl_and_funds(sandbox, sandbox_account):
    cid = sandbox_account.client_id
    sandbox.set_price("NSE", "RELIANCE-EQ", "1500")
    sandbox.place_order(cid, "NSE", "RELIANCE-EQ", "BUY", 10)
    sandbox.set_price("NSE", "RELIANCE-EQ", "1510")
    sandbox.place_order(cid, "NSE", "RELIANCE-EQ", "SELL", 4)
    sandbox.set_price("NSE", "RELIANCE-EQ", "1520")
    (pos,) = sandbox.positions(cid)
    assert pos["net_quantity"] == 6 and pos["average_price"] == "1500.00"
    assert Decimal(pos["realised"]) == Decimal("40.00")
    assert Decimal(pos["unrealised"]) == Decimal("120.00")
    funds = sandbox.funds(cid)
    assert funds["used_margin"] == Decimal("1800.00")  # 6 x 1500 x 20 %
    assert funds["available"] == Decimal("1000000") + Decimal("40") - Decimal("1800")


def test_random_walk_is_seeded_and_stays_on_the_tick(sandbox):
    before = sandbox.price("NSE", "INFY-EQ")
    sandbox.walk(50)
    after = sandbox.price("NSE", "INFY-EQ")
    assert after != before
    assert after % Decimal("0.05") == 0


def test_mcx_quantity_counts_lots_and_the_units_dialect(sandbox, sandbox_account):
    cid = sandbox_account.client_id
    crude = next(
        i
        for i in sandbox.instruments("MCX")
        if i["trading_symbol"].startswith("CRUDEOIL")
        and not i["trading_symbol"].startswith("CRUDEOILM")
    )
    assert (crude["lot_size"], crude["board_lot"]) == (1, 100)
    lots = sandbox.place_order(cid, "MCX", crude["token"], "BUY", 2, product="NORMAL")
    assert (lots["quantity"], lots["units"]) == (2, 200)
    sandbox.set_dialect(mcx_quantity="units")
    units = sandbox.place_order(cid, "MCX", crude["token"], "BUY", 100, product="NORMAL")
    assert (units["quantity"], units["units"]) == (100, 100)
    h3 = g3_login(sandbox, sandbox_account)
    bad = g3(
        sandbox,
        "POST",
        "orders/placeorder",
        h3,
        [
            {
                "instrumentId": crude["token"],
                "exchange": "MCX",
                "transactionType": "BUY",
                "quantity": 150,
                "orderComplexity": "REGULAR",
                "product": "NORMAL",
                "orderType": "MARKET",
                "validity": "DAY",
            }
        ],
    ).json()
    assert bad["message"] == "EC954"
