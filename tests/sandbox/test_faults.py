"""Every injected fault, per account and global, over real sockets."""

from __future__ import annotations

import time

import pytest
import requests

from tests.sandbox.helpers import G3, g2, g2_login, g2_order, g3, g3_login, g3_order


@pytest.fixture
def h3(sandbox, sandbox_account):
    return g3_login(sandbox, sandbox_account)


def test_latency_and_jitter_delay_answers_of_that_account_only(sandbox, sandbox_account, h3):
    other = g3_login(sandbox, sandbox.create_account(daily_login=True))
    sandbox.set_faults(sandbox_account.client_id, latency_ms=300, jitter_ms=50)
    started = time.monotonic()
    assert g3(sandbox, "GET", "limits/", h3).json()["status"] == "Ok"
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    g3(sandbox, "GET", "limits/", other)
    assert time.monotonic() - started < 0.25


def test_error_rate_answers_5xx_with_an_html_body(sandbox, h3):
    sandbox.set_faults(error_rate=1.0, error_status=502)
    answer = g3(sandbox, "GET", "orders/book", h3)
    assert answer.status_code == 502 and answer.headers["Content-Type"].startswith("text/html")
    assert "<html>" in answer.text
    sandbox.clear_faults()
    assert g3(sandbox, "GET", "orders/book", h3).status_code == 200


def test_rate_limit_answers_429(sandbox, sandbox_account, h3):
    sandbox.set_faults(sandbox_account.client_id, rate_limit_rate=1.0)
    assert g3(sandbox, "GET", "orders/book", h3).status_code == 429
    h2 = g2_login(sandbox, sandbox_account)  # login calls carry no session: not throttled here
    assert g2(sandbox, "GET", "placeOrder/fetchOrderBook", h2).status_code == 429


def test_order_timeout_keeps_the_order_but_never_answers(sandbox, sandbox_account, h3):
    sandbox.set_price("NSE", "INFY-EQ", "1500")
    sandbox.set_faults(sandbox_account.client_id, order_timeout_rate=1.0, timeout_hold_ms=200)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(
            sandbox.url + G3 + "orders/placeorder",
            headers=h3,
            json=[g3_order(orderTag="ambiguous-1")],
            timeout=5,
        )
    (order,) = sandbox.orders(sandbox_account.client_id)
    assert order["tag"] == "ambiguous-1" and order["status"] == "COMPLETE"
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(
            sandbox.url + G3 + "orders/placeorder", headers=h3, json=[g3_order()], timeout=0.1
        )
    sandbox.wait_for(lambda: len(sandbox.orders(sandbox_account.client_id)) == 2)


def test_order_timeout_on_the_ant_api_too(sandbox, sandbox_account):
    h2 = g2_login(sandbox, sandbox_account)
    sandbox.set_faults(sandbox_account.client_id, order_timeout_rate=1.0, timeout_hold_ms=100)
    with pytest.raises(requests.exceptions.ConnectionError):
        g2(sandbox, "POST", "placeOrder/executePlaceOrder", h2, [g2_order(orderTag="amb-2")])
    assert sandbox.orders(sandbox_account.client_id)[0]["tag"] == "amb-2"


def test_book_delay_hides_a_new_order_for_a_while(sandbox, sandbox_account, h3):
    sandbox.set_faults(sandbox_account.client_id, book_delay_ms=400)
    ack = g3(sandbox, "POST", "orders/placeorder", h3, [g3_order(orderTag="late")]).json()
    order_no = ack["result"][0]["brokerOrderId"]
    assert g3(sandbox, "GET", "orders/book", h3).json()["message"] == "EC916"
    assert (
        g3(sandbox, "POST", "orders/history", h3, {"brokerOrderId": order_no}).json()["message"]
        == "EC918"
    )
    time.sleep(0.45)
    (row,) = g3(sandbox, "GET", "orders/book", h3).json()["result"]
    assert row["brokerOrderId"] == order_no and row["orderTag"] == "late"


def test_faults_are_validated(sandbox):
    from sandbox.testing import SandboxError

    with pytest.raises(SandboxError, match="unknown fault"):
        sandbox.set_faults(slowness=3)
    with pytest.raises(SandboxError, match="invalid value"):
        sandbox.set_faults(error_rate=2)
