"""ANT API (G2) order flow and shapes: per-leg answers, books as strings, history, errors."""

from __future__ import annotations

import pytest

from tests.sandbox.helpers import g2, g2_login, g2_order

PYA3_ORDER_KEYS = {
    "Validity",
    "RequestID",
    "Trgprc",
    "Trantype",
    "Trsym",
    "Unfilledsize",
    "RejReason",
    "Qty",
    "Pcode",
    "Prc",
    "Prctype",
    "remarks",
    "Status",
    "iSinceBOE",
    "Nstordno",
    "multiplier",
    "user",
    "token",
    "Fillshares",
    "OrderedTime",
    "ExchOrdID",
    "Exchange",
    "Dscqty",
    "accountId",
    "Avgprc",
}
PYA3_TRADE_KEYS = {
    "NOReqID",
    "Trantype",
    "Tsym",
    "Price",
    "FillId",
    "Pcode",
    "iSinceBOE",
    "Nstordno",
    "Symbol",
    "Filledqty",
    "Exchtime",
    "ExchordID",
    "Exchange",
}


@pytest.fixture
def h2(sandbox, sandbox_account):
    sandbox.set_price("NSE", "INFY-EQ", "1500")
    return g2_login(sandbox, sandbox_account)


def test_basket_answers_per_leg_and_books_have_what_pya3_reads(sandbox, h2):
    legs = [g2_order(orderTag="leg-1"), g2_order(qty=0), g2_order(prctyp="L", price=1400.0)]
    acks = g2(sandbox, "POST", "placeOrder/executePlaceOrder", h2, legs).json()
    assert [a["stat"] for a in acks] == ["Ok", "Not_Ok", "Ok"]
    assert acks[1]["emsg"] == "Invalid Quantity"
    book = g2(sandbox, "GET", "placeOrder/fetchOrderBook", h2).json()
    assert all(set(row) >= PYA3_ORDER_KEYS for row in book)
    rows = {r["Nstordno"]: r for r in book}
    market = rows[acks[0]["NOrdNo"]]
    assert (market["Status"], market["Qty"], market["Avgprc"], market["remarks"]) == (
        "complete",
        1,
        "1500.00",
        "leg-1",
    )
    limit = rows[acks[2]["NOrdNo"]]
    assert (limit["Status"], limit["Prc"], limit["Avgprc"], limit["remarks"]) == (
        "open",
        "1400.00",
        "00.00",
        "--",
    )
    (trade,) = g2(sandbox, "GET", "placeOrder/fetchTradeBook", h2).json()
    assert set(trade) >= PYA3_TRADE_KEYS and trade["Price"] == "1500.00"


def test_modify_cancel_and_history(sandbox, h2):
    (ack,) = g2(
        sandbox,
        "POST",
        "placeOrder/executePlaceOrder",
        h2,
        [g2_order(prctyp="SL", price=1400.0, trigPrice=1401.0, transtype="SELL")],
    ).json()
    no = ack["NOrdNo"]
    (row,) = g2(sandbox, "GET", "placeOrder/fetchOrderBook", h2).json()
    assert row["Status"] == "trigger pending" and row["Trgprc"] == "1401.00"
    modify = {
        "discqty": 0,
        "exch": "NSE",
        "nestOrderNumber": no,
        "prctyp": "L",
        "price": 1550.0,
        "qty": 2,
        "trading_symbol": "INFY-EQ",
        "trigPrice": 0.0,
        "transtype": "SELL",
        "pCode": "MIS",
    }
    answer = g2(sandbox, "POST", "placeOrder/modifyOrder", h2, modify).json()
    assert answer["stat"] == "Ok" and answer["Result"] == f" NEST Order Number :{no}"
    (row,) = g2(sandbox, "GET", "placeOrder/fetchOrderBook", h2).json()
    assert (row["Status"], row["Prctype"], row["Qty"], row["Prc"]) == ("open", "L", 2, "1550.00")
    cancel = g2(sandbox, "POST", "placeOrder/cancelOrder", h2, {"nestOrderNumber": no}).json()
    assert cancel["Result"].split(":")[1] == no
    history = g2(sandbox, "POST", "placeOrder/orderHistory", h2, {"nestOrderNumber": no}).json()
    assert history[0]["Status"] == "cancelled"
    assert {"validation pending", "trigger pending", "open", "cancelled"} == {
        h["Status"] for h in history
    }
    again = g2(sandbox, "POST", "placeOrder/cancelOrder", h2, {"nestOrderNumber": no}).json()
    assert again["stat"] == "Not_Ok"


def test_positions_day_and_net_as_strings(sandbox, sandbox_account, h2):
    g2(sandbox, "POST", "placeOrder/executePlaceOrder", h2, [g2_order(qty=3)])
    for kind, marker in (("DAY", "DAY1"), ("NET", "NET1")):
        (pos,) = g2(sandbox, "POST", "positionAndHoldings/positionBook", h2, {"ret": kind}).json()
        assert pos["Type"] == marker and (pos["Netqty"], pos["Bqty"], pos["Sqty"]) == (
            "3",
            "3",
            "0",
        )
        assert pos["Fillbuyamt"] == "4,500.00" and pos["actid"] == sandbox_account.client_id
    assert "CFbuyqty" in pos
    bad = g2(sandbox, "POST", "positionAndHoldings/positionBook", h2, {"ret": "WEEK"}).json()
    assert bad["stat"] == "Not_Ok"
    sq = g2(
        sandbox,
        "POST",
        "positionAndHoldings/sqrOofPosition",
        h2,
        {"exchSeg": "NSE", "pCode": "MIS", "netQty": 3, "tockenNo": 1594, "symbol": "INFY-EQ"},
    ).json()
    assert sq[0]["stat"] == "Ok"
    (pos,) = g2(sandbox, "POST", "positionAndHoldings/positionBook", h2, {"ret": "NET"}).json()
    assert pos["Netqty"] == "0"


def test_empty_books_and_unknown_orders_say_no_data(sandbox, h2):
    for method, path, body in (
        ("GET", "placeOrder/fetchOrderBook", None),
        ("GET", "placeOrder/fetchTradeBook", None),
        ("POST", "positionAndHoldings/positionBook", {"ret": "DAY"}),
        ("GET", "positionAndHoldings/holdings", None),
        ("POST", "placeOrder/orderHistory", {"nestOrderNumber": "1"}),
    ):
        assert g2(sandbox, method, path, h2, body).json() == {"stat": "Not_Ok", "emsg": "No Data"}


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"exch": "NYSE"}, "Invalid Exchange"),
        ({"symbol_id": "999999"}, "Invalid Symbol"),
        ({"transtype": "HOLD"}, "Invalid Transaction Type"),
        ({"qty": -1}, "Invalid Quantity"),
        ({"pCode": "XYZ"}, "Invalid Product Code"),
        ({"pCode": "CO"}, "CO orders are not allowed for this account"),
        ({"complexty": "BO"}, "BO orders are not allowed for this account"),
        ({"prctyp": "STOP"}, "Invalid Price Type"),
        ({"ret": "GTC"}, "Invalid Retention Type"),
        ({"prctyp": "L", "price": None}, "Price is required"),
        ({"prctyp": "SL-M", "trigPrice": None}, "Trigger price is required"),
        ({"pCode": "NRML"}, "NRML product is not allowed in cash segment"),
    ],
)
def test_bad_legs_are_refused_with_a_text(sandbox, h2, fields, text):
    (leg,) = g2(sandbox, "POST", "placeOrder/executePlaceOrder", h2, [g2_order(**fields)]).json()
    assert leg == {"stat": "Not_Ok", "emsg": text}


def test_invalid_json_is_invalid_input(sandbox, h2):
    import requests

    from tests.sandbox.helpers import G2

    answer = requests.post(
        sandbox.url + G2 + "placeOrder/executePlaceOrder",
        data="{nope",
        headers={**h2, "Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.json() == {"stat": "Not_Ok", "emsg": "Invalid Input"}


def test_limits_search_and_ws_session(sandbox, h2):
    (limits,) = g2(sandbox, "GET", "limits/getRmsLimits", h2).json()
    assert limits["net"] == "1000000.00" and limits["stat"] == "Ok"
    for path in ("ws/invalidateSocketSess", "ws/createSocketSess"):
        assert g2(sandbox, "POST", path, h2, {"loginType": "API"}).json()["stat"] == "Ok"
    import requests

    found = requests.post(
        sandbox.url + "/rest/DataApiService/v2/exchange/getScripForSearchAPI",
        json={"symbol": "INFY", "exchange": ["NSE"]},
        timeout=10,
    ).json()
    assert found[0]["token"] == "1594" and found[0]["symbol"] == "INFY-EQ"
