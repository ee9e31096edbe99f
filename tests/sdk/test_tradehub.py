"""The unmodified official Open API SDK, Ant-A3-tradehub-sdk-production 1.1.7, against the
sandbox. Its websocket-session calls hard-code https://a3.aliceblueonline.com; as in the
capture, `requests.request` inside the SDK module is wrapped to send them to the sandbox."""

from __future__ import annotations

import pytest
import requests

TradeSync = pytest.importorskip("TradeMaster.TradeSync", reason="TradeHub SDK is a dev dependency")


@pytest.fixture
def trade(sandbox, sandbox_account, monkeypatch, tmp_path):
    code = sandbox.auth_code(sandbox_account.client_id)  # the vendor login page's redirect
    client = TradeSync.TradeHub(
        sandbox_account.client_id, code, sandbox_account.api_secret, base_url=sandbox.url + "/"
    )
    real = requests.request

    def redirected(method, url, *args, **kwargs):  # type: ignore[no-untyped-def]
        return real(
            method,
            url.replace("https://a3.aliceblueonline.com", sandbox.url),
            *args,
            timeout=10,
            **kwargs,
        )

    monkeypatch.setattr(TradeSync.requests, "request", redirected)
    monkeypatch.chdir(tmp_path)
    sandbox.set_price("NSE", "INFY-EQ", "1500")
    return client


def _place(trade, **kw):  # type: ignore[no-untyped-def]
    args = {
        "instrumentId": "1594",
        "exchange": "NSE",
        "transactionType": "BUY",
        "quantity": 1,
        "orderComplexity": "REGULAR",
        "product": "INTRADAY",
        "orderType": "MARKET",
        "price": "",
        "slTriggerPrice": "",
        "slLegPrice": "",
        "targetLegPrice": "",
        "validity": "DAY",
    }
    args.update(kw)
    return trade.placeOrder(**args)


def test_tradehub_logs_in_places_modifies_cancels_and_reads_books(sandbox, sandbox_account, trade):
    session = trade.get_session_id()
    assert session["userSession"].count(".") == 2
    assert trade.get_profile()["result"][0]["clientId"] == sandbox_account.client_id
    assert trade.get_funds()["status"] == "Ok"

    market = _place(trade, orderTag="sdk-mkt")
    assert market["status"] == "Ok"
    market_no = market["result"][0]["brokerOrderId"]
    limit = _place(trade, orderType="LIMIT", price="1450.5", quantity=2, product="LONGTERM")
    limit_no = limit["result"][0]["brokerOrderId"]
    modified = trade.modifyOrder(
        brokerOrderId=limit_no,
        price="1452",
        slTriggerPrice="",
        slLegPrice="",
        targetLegPrice="",
        quantity="3",
        orderType="LIMIT",
        validity="DAY",
    )
    assert modified["status"] == "Ok"
    history = trade.get_orderHistory(limit_no)["result"]
    assert any(r["orderStatus"] == "OPEN" and r["quantity"] == 3 for r in history)
    assert trade.cancelOrder(limit_no)["status"] == "Ok"

    book = {r["brokerOrderId"]: r for r in trade.get_orderbook()["result"]}
    assert book[limit_no]["orderStatus"] == "CANCELLED" and book[limit_no]["price"] == 1452.0
    assert book[market_no]["orderStatus"] == "COMPLETE" and book[market_no]["orderTag"] == "sdk-mkt"
    (fill,) = trade.get_tradebook()["result"]
    assert fill["brokerOrderId"] == market_no and fill["tradedPrice"] == 1500.0
    (pos,) = trade.get_positions()["result"]
    assert pos["netQuantity"] == 1 and pos["product"] == "INTRADAY"

    margin = trade.singleOrderMargin(
        transactionType="BUY",
        quantity=1,
        orderComplexity="REGULAR",
        product="INTRADAY",
        orderType="LIMIT",
        price="1450",
        slTriggerPrice="",
        slLegPrice="",
        instrumentId="1594",
        exchange="NSE",
    )
    assert margin["result"][0]["currentOrderMargin"] == "290.00"
    token = trade.get_WebsocketToken()
    assert token["status"] == "Ok" and token["result"][0]["orderToken"]
    assert trade.invalid_sess(trade._session_id)["status"] == "Ok"
    assert trade.createSession(trade._session_id)["status"] == "Ok"


def test_tradehub_contract_master_download_and_lookup(sandbox, trade):
    trade._base_url_contract = sandbox.contract_url + "/"
    answer = trade.get_contract_master("NSE")
    if answer["emsg"] == "Previous day contract file saved":  # the SDK refuses before 08:00
        pytest.skip("TradeHub downloads only after 08:00 local time")
    assert answer["emsg"] == "Today's contract file downloaded"
    inst = trade.get_instrument("NSE", symbol="INFY")
    assert (inst.exchange, str(inst.token), inst.trading_symbol) == ("NSE", "1594", "INFY-EQ")


def test_tradehub_sees_an_expired_session_as_ec087(sandbox, sandbox_account, trade):
    trade.get_session_id()
    sandbox.expire_sessions(sandbox_account.client_id)
    answer = trade.get_orderbook()
    assert answer["status"] == "Not_Ok" and answer["message"] == "EC087"
