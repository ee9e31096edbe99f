"""The unmodified official ANT SDK, pya3 1.0.30, against the sandbox (PROTOCOL.md §11)."""

from __future__ import annotations

import pytest
import requests

pya3 = pytest.importorskip("pya3", reason="pya3 is a pinned dev dependency")


@pytest.fixture
def alice(sandbox, sandbox_account, tmp_path, monkeypatch):
    base = sandbox.url + "/rest/AliceBlueAPIService/api/"
    client = pya3.Aliceblue(sandbox_account.client_id.lower(), sandbox_account.api_key, base=base)
    client.base_url = base  # used by the websocket-session, history and search helpers
    # pya3's own contract download is broken (TypeError); users copy the CSV in by hand.
    monkeypatch.chdir(tmp_path)
    for exch in ("NSE", "NFO"):
        text = requests.get(f"{sandbox.contract_url}/{exch}.csv", timeout=10).text
        (tmp_path / f"{exch}.csv").write_text(text)
    sandbox.set_price("NSE", "INFY-EQ", "1500")
    return client


def test_pya3_logs_in_places_modifies_cancels_and_reads_books(sandbox, sandbox_account, alice):
    session = alice.get_session_id()
    assert session["stat"] == "Ok" and session["sessionID"]
    assert alice.get_profile()["accountId"] == sandbox_account.client_id
    assert alice.get_balance()[0]["stat"] == "Ok"

    infy = alice.get_instrument_by_symbol("NSE", "INFY")
    assert (infy.exchange, int(infy.token), infy.name) == ("NSE", 1594, "INFY-EQ")
    T, OT, P = pya3.TransactionType, pya3.OrderType, pya3.ProductType
    market = alice.place_order(
        T.Buy, infy, 2, OT.Market, P.Intraday, price=0.0, order_tag="sdk-mkt"
    )
    assert market["stat"] == "Ok"
    limit = alice.place_order(T.Buy, infy, 1, OT.Limit, P.Delivery, price=1400.0)
    assert limit["stat"] == "Ok"
    order_id = limit["NOrdNo"]
    modified = alice.modify_order(T.Buy, infy, P.Delivery, order_id, OT.Limit, 2, price=1401.0)
    assert modified["stat"] == "Ok" and modified["Result"].split(":")[1] == order_id
    one = alice.get_order_history(order_id)
    assert (one["Qty"], one["Prc"], one["Status"]) == (2, "1401.00", "open")
    cancelled = alice.cancel_order(order_id)
    assert cancelled["stat"] == "Ok"

    book = alice.order_data()
    by_no = {row["Nstordno"]: row for row in book}
    assert by_no[order_id]["Status"] == "cancelled"
    assert by_no[market["NOrdNo"]]["Status"] == "complete"
    assert by_no[market["NOrdNo"]]["remarks"] == "sdk-mkt"
    trades = alice.get_trade_book()
    assert [t["Nstordno"] for t in trades] == [market["NOrdNo"]]
    assert float(trades[0]["Price"]) == 1500.0
    day = alice.get_daywise_positions()
    assert int(day[0]["Netqty"]) == 2 and day[0]["Fillbuyamt"].replace(",", "") == "3000.00"
    net = alice.get_netwise_positions()
    assert int(net[0]["Bqty"]) == 2 and int(net[0]["Sqty"]) == 0
    assert [p["Tsym"] for p in pya3.Alice_Wrapper.open_net_position(net)] == ["INFY-EQ"]

    quote = alice.get_scrip_info(infy)
    assert quote["stat"] == "Ok" and quote["LTP"] == "1500.00"
    assert sandbox.orders(sandbox_account.client_id)[-1]["status"] == "CANCELLED"


def test_pya3_nfo_delivery_becomes_nrml_and_lots_are_enforced(sandbox, sandbox_account, alice):
    alice.get_session_id()
    fut = next(
        i
        for i in sandbox.instruments("NFO")
        if i["instrument_type"] == "FUTIDX" and i["trading_symbol"].startswith("NIFTY")
    )
    inst = alice.get_instrument_for_fno("NFO", "NIFTY", fut["expiry"], is_fut=True)
    assert int(inst.token) == int(fut["token"]) and int(inst.lot_size) == 65
    T, OT, P = pya3.TransactionType, pya3.OrderType, pya3.ProductType
    ok = alice.place_order(T.Buy, inst, 65, OT.Market, P.Delivery, price=0.0)
    assert ok["stat"] == "Ok"
    bad = alice.place_order(T.Buy, inst, 10, OT.Market, P.Delivery, price=0.0)
    assert bad["stat"] == "Not_Ok" and "lot size 65" in bad["emsg"]
    (order,) = sandbox.orders(sandbox_account.client_id)
    assert (order["product"], order["status"]) == ("NRML", "COMPLETE")


def test_pya3_reports_the_daily_rule_and_an_expired_session(sandbox):
    acct = sandbox.create_account()
    alice = pya3.Aliceblue(
        acct.client_id, acct.api_key, base=sandbox.url + "/rest/AliceBlueAPIService/api/"
    )
    refused = alice.get_session_id()
    assert refused["encKey"] is None and "login" in refused["emsg"]
    sandbox.daily_login(acct.client_id)
    assert alice.get_session_id()["stat"] == "Ok"
    sandbox.expire_sessions(acct.client_id)
    assert alice.order_data() == {"stat": "Not_ok", "emsg": "401 - Unauthorized", "encKey": None}
