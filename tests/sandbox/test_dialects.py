"""Each dialect switch for what PROTOCOL.md marks UNCONFIRMED changes the wire form."""

from __future__ import annotations

import pytest

from tests.sandbox.helpers import g2, g2_login, g3, g3_login, g3_order


def test_trigger_pending_spelling(sandbox, sandbox_account):
    h3 = g3_login(sandbox, sandbox_account)
    h2 = g2_login(sandbox, sandbox_account)
    sandbox.set_price("NSE", "INFY-EQ", "1500")
    sandbox.place_order(
        sandbox_account.client_id, "NSE", "INFY-EQ", "BUY", 1, order_type="SLM", trigger="1600"
    )
    assert g3(sandbox, "GET", "orders/book", h3).json()["result"][0]["orderStatus"] == (
        "TRIGGER PENDING"
    )
    sandbox.set_dialect(g3_trigger_pending="TRIGGER_PENDING")
    assert g3(sandbox, "GET", "orders/book", h3).json()["result"][0]["orderStatus"] == (
        "TRIGGER_PENDING"
    )
    assert g2(sandbox, "GET", "placeOrder/fetchOrderBook", h2).json()[0]["Status"] == (
        "trigger pending"
    )


def test_g3_error_envelope_variants(sandbox, sandbox_account):
    h3 = g3_login(sandbox, sandbox_account)
    assert g3(sandbox, "GET", "positions", h3).json() == {
        "status": "Not_Ok",
        "message": "EC920",
        "infoMessage": None,
        "result": None,
    }
    sandbox.set_dialect(g3_error_envelope="status_code")
    body = g3(sandbox, "GET", "positions", h3).json()
    assert body["status"] == "EC920" and body["message"] == "No positions found"


def test_expired_session_http_status(sandbox, sandbox_account):
    h3 = g3_login(sandbox, sandbox_account)
    sandbox.expire_sessions(sandbox_account.client_id)
    assert g3(sandbox, "GET", "profile/", h3).status_code == 200
    sandbox.set_dialect(g3_expired_http="401")
    answer = g3(sandbox, "GET", "profile/", h3)
    assert answer.status_code == 401 and answer.json()["message"] == "EC087"


@pytest.mark.parametrize(("stat", "key"), [("Not_Ok", "emsg"), ("Not_ok", "Emsg")])
def test_g2_error_casing(sandbox, sandbox_account, stat, key):
    sandbox.set_dialect(g2_not_ok=stat, g2_emsg_key=key)
    h2 = g2_login(sandbox, sandbox_account)
    body = g2(sandbox, "GET", "placeOrder/fetchOrderBook", h2).json()
    assert body == {"stat": stat, key: "No Data"}


def test_normal_product_spelling(sandbox, sandbox_account):
    h3 = g3_login(sandbox, sandbox_account)
    fut = next(i for i in sandbox.instruments("NFO") if i["instrument_type"] == "FUTIDX")
    for product in ("NORMAL", "NRML"):  # both accepted on input
        ack = g3(
            sandbox,
            "POST",
            "orders/placeorder",
            h3,
            [
                g3_order(
                    exchange="NFO",
                    instrumentId=fut["token"],
                    quantity=fut["lot_size"],
                    product=product,
                )
            ],
        ).json()
        assert ack["status"] == "Ok"
    assert {r["product"] for r in g3(sandbox, "GET", "orders/book", h3).json()["result"]} == {
        "NORMAL"
    }
    sandbox.set_dialect(normal_product="NRML")
    assert {r["product"] for r in g3(sandbox, "GET", "positions", h3).json()["result"]} == {"NRML"}


def test_amo_ack_suffix(sandbox, sandbox_account):
    from datetime import datetime

    from sandbox.clock import IST
    from tests.sandbox.helpers import g2_order

    sandbox.set_round_the_clock(False)
    sandbox.set_clock(datetime(2026, 7, 27, 18, 0, tzinfo=IST))
    sandbox.daily_login(sandbox_account.client_id)
    h2 = g2_login(sandbox, sandbox_account)
    amo = g2_order(complexty="AMO", prctyp="L", price=1450.0, pCode="CNC")
    (plain,) = g2(sandbox, "POST", "placeOrder/executePlaceOrder", h2, [amo]).json()
    assert plain["NOrdNo"].isdigit()
    sandbox.set_dialect(g2_amo_ack_suffix="on")
    (suffixed,) = g2(sandbox, "POST", "placeOrder/executePlaceOrder", h2, [amo]).json()
    assert suffixed["NOrdNo"].endswith("-after market order req received")
    statuses = {r["Status"] for r in g2(sandbox, "GET", "placeOrder/fetchOrderBook", h2).json()}
    assert statuses == {"after market order req received"}


def test_unknown_dialect_values_are_refused(sandbox):
    from sandbox.testing import SandboxError

    with pytest.raises(SandboxError, match="is not one of"):
        sandbox.set_dialect(mcx_quantity="kilos")
    with pytest.raises(SandboxError, match="unknown dialect"):
        sandbox.set_dialect(colour="blue")
