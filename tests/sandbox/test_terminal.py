"""The terminal page for people: sign in (daily sign-in), create an account, place, modify and
cancel, see books; CSRF and CSP."""

from __future__ import annotations

import re

import requests

from tests.sandbox.helpers import TIMEOUT, g2_login


def _signed_in(sandbox, acct) -> requests.Session:
    web = requests.Session()
    web.get(sandbox.url + "/terminal/", timeout=TIMEOUT)
    answer = web.post(
        sandbox.url + "/terminal/login",
        timeout=TIMEOUT,
        allow_redirects=False,
        data={
            "csrf": web.cookies["sbx_csrf"],
            "client_id": acct.client_id,
            "password": acct.password,
        },
    )
    assert answer.status_code == 303
    return web


def test_sign_in_counts_as_daily_login_and_trading_works(sandbox):
    acct = sandbox.create_account()
    sandbox.set_price("NSE", "INFY-EQ", "1500")
    with _signed_in(sandbox, acct) as web:
        page = web.get(sandbox.url + "/terminal/", timeout=TIMEOUT)
        assert f"Signed in as <strong>{acct.client_id}</strong>" in page.text
        assert "Content-Security-Policy" in page.headers and "<script" not in page.text
        assert " style=" not in page.text
        csrf = web.cookies["sbx_csrf"]
        placed = web.post(
            sandbox.url + "/terminal/order",
            timeout=TIMEOUT,
            data={
                "csrf": csrf,
                "exchange": "NSE",
                "symbol": "INFY-EQ",
                "side": "BUY",
                "quantity": "2",
                "order_type": "LIMIT",
                "product": "INTRADAY",
                "price": "1400",
                "trigger": "",
                "validity": "DAY",
                "tag": "by-hand",
            },
        )
        assert placed.status_code == 200 and "OPEN" in placed.text
        (order,) = sandbox.orders(acct.client_id)
        assert (order["source"], order["tag"], order["status"]) == ("WEB", "by-hand", "OPEN")
        web.post(
            sandbox.url + "/terminal/modify",
            timeout=TIMEOUT,
            data={
                "csrf": csrf,
                "order_no": order["order_no"],
                "quantity": "3",
                "price": "1450",
                "trigger": "0",
            },
        )
        assert sandbox.orders(acct.client_id)[0]["quantity"] == 3
        web.post(
            sandbox.url + "/terminal/cancel",
            timeout=TIMEOUT,
            data={"csrf": csrf, "order_no": order["order_no"]},
        )
        assert sandbox.orders(acct.client_id)[0]["status"] == "CANCELLED"
        bad = web.post(
            sandbox.url + "/terminal/order",
            timeout=TIMEOUT,
            data={
                "csrf": csrf,
                "exchange": "NSE",
                "symbol": "NOPE",
                "side": "BUY",
                "quantity": "1",
                "order_type": "MARKET",
                "product": "INTRADAY",
            },
        )
        assert bad.status_code == 400 and "No such tradable instrument" in bad.text
        forged = web.post(
            sandbox.url + "/terminal/cancel",
            timeout=TIMEOUT,
            data={"csrf": "wrong", "order_no": order["order_no"]},
        )
        assert "Your form expired" in forged.text
    assert g2_login(sandbox, acct)  # the terminal sign-in was today's sign-in


def test_create_account_shows_credentials_once(sandbox):
    with requests.Session() as web:
        web.get(sandbox.url + "/terminal/", timeout=TIMEOUT)
        page = web.post(
            sandbox.url + "/terminal/signup",
            timeout=TIMEOUT,
            data={"csrf": web.cookies["sbx_csrf"], "new_client_id": "", "funds": "5000"},
        )
        assert page.status_code == 200
        client_id = re.search(r"Sandbox account (\w+) created", page.text).group(1)
        acct = sandbox.account(client_id)
        assert acct.password in page.text and acct.api_key in page.text
        assert acct.funds == 5000
        dup = web.post(
            sandbox.url + "/terminal/signup",
            timeout=TIMEOUT,
            data={"csrf": web.cookies["sbx_csrf"], "new_client_id": client_id},
        )
        assert dup.status_code == 400 and "already exists" in dup.text


def test_wrong_password_and_anonymous_actions(sandbox, sandbox_account):
    with requests.Session() as web:
        web.get(sandbox.url + "/terminal/", timeout=TIMEOUT)
        wrong = web.post(
            sandbox.url + "/terminal/login",
            timeout=TIMEOUT,
            data={
                "csrf": web.cookies["sbx_csrf"],
                "client_id": sandbox_account.client_id,
                "password": "x",
            },
        )
        assert wrong.status_code == 400 and "Client ID or password is wrong" in wrong.text
        anon = web.post(
            sandbox.url + "/terminal/order",
            timeout=TIMEOUT,
            allow_redirects=False,
            data={"csrf": web.cookies["sbx_csrf"], "symbol": "INFY-EQ"},
        )
        assert anon.status_code == 303
    assert sandbox.orders(sandbox_account.client_id) == []
