"""Open API order flow and wire shapes: place, modify, cancel, books, history, EC codes."""

from __future__ import annotations

import pytest

from tests.sandbox.helpers import g3, g3_login, g3_order

ORDER_ROW_KEYS = {
    "clientId",
    "placedBy",
    "brokerOrderId",
    "exchange",
    "exchangeOrderId",
    "formattedInstrumentName",
    "tradingSymbol",
    "instrumentId",
    "transactionType",
    "quantity",
    "product",
    "orderComplexity",
    "orderType",
    "price",
    "averageTradedPrice",
    "slTriggerPrice",
    "validity",
    "disclosedQuantity",
    "orderTime",
    "exchangeUpdateTime",
    "rejectionReason",
    "mainLegOrderId",
    "cancelledQuantity",
    "pendingQuantity",
    "filledQuantity",
    "appKey",
    "algoId",
    "source",
    "orderTag",
    "trailingSlAmount",
    "brokerUpdateTime",
    "marketProtectionPercent",
    "exchangeTimestamp",
    "orderStatus",
}


@pytest.fixture
def h3(sandbox, sandbox_account):
    sandbox.set_price("NSE", "INFY-EQ", "1500")
    return g3_login(sandbox, sandbox_account)


def place(sandbox, headers, **fields):
    body = g3(sandbox, "POST", "orders/placeorder", headers, [g3_order(**fields)]).json()
    return body


def test_market_order_fills_at_ltp_and_shows_in_books(sandbox, sandbox_account, h3):
    ack = place(sandbox, h3, orderTag="sbx-mkt-1")
    assert ack["status"] == "Ok" and ack["message"] == "Success" and ack["infoMessage"] is None
    (result,) = ack["result"]
    assert set(result) == {"requestTime", "brokerOrderId"}
    order_no = result["brokerOrderId"]
    assert order_no.isdigit() and len(order_no) == 15
    book = g3(sandbox, "GET", "orders/book", h3).json()["result"]
    (row,) = book
    assert set(row) == ORDER_ROW_KEYS
    assert row["orderStatus"] == "COMPLETE" and row["orderTag"] == "sbx-mkt-1"
    assert row["averageTradedPrice"] == 1500.0 and isinstance(row["quantity"], int)
    assert row["product"] == "INTRADAY" and row["filledQuantity"] == 1
    (trade,) = g3(sandbox, "GET", "orders/trades", h3).json()["result"]
    assert trade["tradedPrice"] == 1500.0 and trade["brokerOrderId"] == order_no
    (pos,) = g3(sandbox, "GET", "positions", h3).json()["result"]
    assert pos["netQuantity"] == 1 and pos["netAveragePrice"] == 1500.0
    assert sandbox.orders(sandbox_account.client_id)[0]["status"] == "COMPLETE"


def test_limit_order_rests_then_fills_when_price_crosses(sandbox, sandbox_account, h3):
    order_no = place(sandbox, h3, orderType="LIMIT", price="1490.5", quantity=2)["result"][0][
        "brokerOrderId"
    ]
    (row,) = g3(sandbox, "GET", "orders/book", h3).json()["result"]
    assert row["orderStatus"] == "OPEN" and row["pendingQuantity"] == 2
    sandbox.set_price("NSE", "1594", "1490.50")
    (row,) = g3(sandbox, "GET", "orders/book", h3).json()["result"]
    assert row["orderStatus"] == "COMPLETE" and row["averageTradedPrice"] == 1490.5
    history = g3(sandbox, "POST", "orders/history", h3, {"brokerOrderId": order_no}).json()
    statuses = [r["orderStatus"] for r in history["result"]]
    assert sorted(statuses) == sorted(["PENDING", "OPEN", "COMPLETE"])
    assert statuses[0] == "COMPLETE"  # not chronological, like AliceBlue's
    complete = next(r for r in history["result"] if r["orderStatus"] == "COMPLETE")
    assert complete["averageTradedPrice"] == 1490.5


def test_modify_then_cancel_an_open_order(sandbox, h3):
    order_no = place(sandbox, h3, orderType="LIMIT", price="1400", quantity=2)["result"][0][
        "brokerOrderId"
    ]
    modify = {
        "brokerOrderId": order_no,
        "quantity": "3",
        "orderType": "LIMIT",
        "slTriggerPrice": "",
        "price": "1401",
        "slLegPrice": "",
        "trailingSLAmount": "",
        "targetLegPrice": "",
        "validity": "DAY",
        "disclosedQuantity": "",
        "marketProtectionPrecent": "",
        "deviceId": "",
    }
    answer = g3(sandbox, "POST", "orders/modify", h3, modify).json()
    assert answer["status"] == "Ok" and answer["result"][0]["brokerOrderId"] == order_no
    (row,) = g3(sandbox, "GET", "orders/book", h3).json()["result"]
    assert (row["quantity"], row["price"], row["orderStatus"]) == (3, 1401.0, "OPEN")
    cancel = g3(sandbox, "POST", "orders/cancel", h3, {"brokerOrderId": order_no}).json()
    assert cancel["status"] == "Ok"
    (row,) = g3(sandbox, "GET", "orders/book", h3).json()["result"]
    assert row["orderStatus"] == "CANCELLED" and row["cancelledQuantity"] == 3
    again = g3(sandbox, "POST", "orders/cancel", h3, {"brokerOrderId": order_no}).json()
    assert again["message"] == "EC993"
    assert g3(sandbox, "POST", "orders/modify", h3, modify).json()["message"] == "EC993"


def test_stop_orders_wait_for_their_trigger(sandbox, h3):
    sl = place(
        sandbox, h3, transactionType="SELL", orderType="SL", price="1400", slTriggerPrice="1401"
    )["result"][0]["brokerOrderId"]
    slm = place(sandbox, h3, transactionType="BUY", orderType="SLM", slTriggerPrice="1510")[
        "result"
    ][0]["brokerOrderId"]
    rows = {r["brokerOrderId"]: r for r in g3(sandbox, "GET", "orders/book", h3).json()["result"]}
    assert rows[sl]["orderStatus"] == rows[slm]["orderStatus"] == "TRIGGER PENDING"
    sandbox.set_price("NSE", "INFY-EQ", "1512")
    rows = {r["brokerOrderId"]: r for r in g3(sandbox, "GET", "orders/book", h3).json()["result"]}
    assert rows[slm]["orderStatus"] == "COMPLETE" and rows[slm]["averageTradedPrice"] == 1512.0
    assert rows[sl]["orderStatus"] == "TRIGGER PENDING"
    sandbox.set_price("NSE", "INFY-EQ", "1400.50")
    rows = {r["brokerOrderId"]: r for r in g3(sandbox, "GET", "orders/book", h3).json()["result"]}
    assert rows[sl]["orderStatus"] == "COMPLETE" and rows[sl]["averageTradedPrice"] == 1400.5


def test_empty_books_answer_their_no_data_codes(sandbox, h3):
    assert g3(sandbox, "GET", "orders/book", h3).json()["message"] == "EC916"
    assert g3(sandbox, "GET", "orders/trades", h3).json()["message"] == "EC926"
    assert g3(sandbox, "GET", "positions", h3).json()["message"] == "EC920"
    assert g3(sandbox, "GET", "holdings/CNC", h3).json()["message"] == "EC922"
    history = g3(sandbox, "POST", "orders/history", h3, {"brokerOrderId": "999"}).json()
    assert history["message"] == "EC918"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"exchange": ""}, "EC900"),
        ({"exchange": "NYSE"}, "EC901"),
        ({"instrumentId": ""}, "EC941"),
        ({"instrumentId": "INFY"}, "EC946"),
        ({"instrumentId": "999999"}, "EC947"),
        ({"instrumentId": "26000"}, "EC947"),  # an index is not tradable
        ({"transactionType": ""}, "EC907"),
        ({"transactionType": "HOLD"}, "EC929"),
        ({"quantity": ""}, "EC903"),
        ({"quantity": 0}, "EC904"),
        ({"quantity": "1.5"}, "EC904"),
        ({"quantity": 50_000_001}, "EC948"),
        ({"orderComplexity": ""}, "EC942"),
        ({"orderComplexity": "BO"}, "EC091"),
        ({"product": ""}, "EC906"),
        ({"product": "WEEKLY"}, "EC092"),
        ({"product": "MTF"}, "EC837"),
        ({"product": "NORMAL"}, "EC807"),
        ({"orderType": ""}, "EC934"),
        ({"orderType": "SL-M"}, "EC930"),
        ({"validity": ""}, "EC944"),
        ({"validity": "GTC"}, "EC932"),
        ({"validity": "IOC", "orderComplexity": "AMO"}, "EC996"),
        ({"orderType": "LIMIT", "price": ""}, "EC910"),
        ({"orderType": "LIMIT", "price": "abc"}, "EC950"),
        ({"orderType": "LIMIT", "price": "-1"}, "EC957"),
        ({"orderType": "SLM", "slTriggerPrice": ""}, "EC911"),
        ({"orderType": "SLM", "slTriggerPrice": "x"}, "EC951"),
        ({"orderType": "SLM", "slTriggerPrice": "0"}, "EC959"),
        ({"orderType": "SL", "price": "1400", "slTriggerPrice": "1401"}, "EC973"),
        (
            {
                "orderType": "SL",
                "transactionType": "SELL",
                "price": "1400",
                "slTriggerPrice": "1399",
            },
            "EC974",
        ),
        ({"disclosedQuantity": "5"}, "EC975"),
        ({"disclosedQuantity": "x"}, "EC981"),
        ({"orderTag": "x" * 51}, "EC971"),
        ({"algoId": "x" * 13}, "EC972"),
    ],
)
def test_bad_place_input_gets_the_documented_ec_code(sandbox, h3, fields, code):
    answer = g3(sandbox, "POST", "orders/placeorder", h3, [g3_order(**fields)])
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "Not_Ok",
        "message": code,
        "infoMessage": None,
        "result": None,
    }


def test_place_body_must_be_a_non_empty_array(sandbox, h3):
    for body in ({}, [], "x", [1]):
        assert g3(sandbox, "POST", "orders/placeorder", h3, body).json()["message"] == "EC914"


def test_fno_quantity_must_be_a_lot_multiple(sandbox, h3):
    fut = next(
        i
        for i in sandbox.instruments("NFO")
        if i["instrument_type"] == "FUTIDX" and i["trading_symbol"].startswith("NIFTY")
    )
    assert fut["lot_size"] == 65 and fut["freeze_qty"] == 1800
    bad = place(
        sandbox, h3, exchange="NFO", instrumentId=fut["token"], quantity=64, product="NORMAL"
    )
    assert bad["message"] == "EC954"
    good = place(
        sandbox, h3, exchange="NFO", instrumentId=fut["token"], quantity=130, product="NORMAL"
    )
    assert good["status"] == "Ok"
    longterm = place(
        sandbox, h3, exchange="NFO", instrumentId=fut["token"], quantity=65, product="LONGTERM"
    )
    assert longterm["message"] == "EC865"


def test_modify_and_cancel_input_errors(sandbox, h3):
    assert (
        g3(sandbox, "POST", "orders/modify", h3, {"brokerOrderId": ""}).json()["message"] == "EC945"
    )
    assert (
        g3(sandbox, "POST", "orders/modify", h3, {"brokerOrderId": "42"}).json()["message"]
        == "EC994"
    )
    assert g3(sandbox, "POST", "orders/cancel", h3, {}).json()["message"] == "EC945"
    assert (
        g3(sandbox, "POST", "orders/cancel", h3, {"brokerOrderId": "42"}).json()["message"]
        == "EC997"
    )


def test_an_order_of_another_account_is_invisible(sandbox, h3):
    other = sandbox.create_account(daily_login=True)
    order = sandbox.place_order(
        other.client_id, "NSE", "INFY-EQ", "BUY", 1, order_type="LIMIT", price="1000"
    )
    no = order["order_no"]
    assert (
        g3(sandbox, "POST", "orders/cancel", h3, {"brokerOrderId": no}).json()["message"] == "EC997"
    )
    assert (
        g3(sandbox, "POST", "orders/history", h3, {"brokerOrderId": no}).json()["message"]
        == "EC918"
    )
    assert sandbox.orders(other.client_id)[0]["status"] == "OPEN"


def test_profile_limits_margin_and_ws_session(sandbox, sandbox_account, h3):
    (profile,) = g3(sandbox, "GET", "profile/", h3).json()["result"]
    assert profile["clientId"] == sandbox_account.client_id
    (limits,) = g3(sandbox, "GET", "limits/", h3).json()["result"]
    assert limits["openingCashLimit"] == 1000000.0 and limits["utilizedMargin"] == 0
    margin = g3(
        sandbox,
        "POST",
        "orders/checkMargin",
        h3,
        {
            "instrumentId": "1594",
            "exchange": "NSE",
            "transactionType": "BUY",
            "quantity": 10,
            "orderComplexity": "REGULAR",
            "product": "LONGTERM",
            "orderType": "LIMIT",
            "price": "1450",
            "slTriggerPrice": "",
            "slLegPrice": "",
        },
    ).json()
    assert margin["result"][0]["currentOrderMargin"] == "14500.00"
    body = {"source": "API", "userId": sandbox_account.client_id}
    for path in ("profile/invalidateWsSess", "profile/createWsSess"):
        answer = g3(sandbox, "POST", path, h3, body).json()
        assert answer["status"] == "Ok" and answer["result"] == [{"Status": "OK"}]


def test_square_off_places_an_order(sandbox, h3):
    place(sandbox, h3)
    answer = g3(
        sandbox,
        "POST",
        "orders/positions/sqroff",
        h3,
        [g3_order(transactionType="SELL", trailingSlAmount=None)],
    ).json()
    assert answer["status"] == "Ok"
    (pos,) = g3(sandbox, "GET", "positions", h3).json()["result"]
    assert pos["netQuantity"] == 0 and pos["buyQuantity"] == pos["sellQuantity"] == 1
