"""Both login flows, AliceBlue's daily sign-in rule and session lifetime, over real sockets."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import requests

from sandbox.clock import IST
from sandbox.server import MSG_INVALID_AUTH_CODE, MSG_NOT_LOGGED_IN
from tests.sandbox.helpers import G2, G3, TIMEOUT, g2, g2_login, g3, g3_login, g3_session


def test_g2_api_key_login_issues_a_session_that_reads_the_profile(sandbox, sandbox_account):
    headers = g2_login(sandbox, sandbox_account)
    profile = g2(sandbox, "GET", "customer/accountDetails", headers).json()
    assert profile["accountId"] == sandbox_account.client_id
    assert profile["accountStatus"] == "Activated"


def test_g2_login_is_refused_until_the_daily_sign_in(sandbox):
    acct = sandbox.create_account()
    enc = requests.post(
        sandbox.url + G2 + "customer/getAPIEncpkey",
        json={"userId": acct.client_id},
        timeout=TIMEOUT,
    ).json()
    assert enc == {"stat": "Not_Ok", "emsg": MSG_NOT_LOGGED_IN, "encKey": None}
    sandbox.daily_login(acct.client_id)
    assert g2_login(sandbox, acct)["Authorization"].startswith(f"Bearer {acct.client_id} ")


def test_g2_login_rejects_a_wrong_api_key_hash(sandbox, sandbox_account):
    enc = requests.post(
        sandbox.url + G2 + "customer/getAPIEncpkey",
        json={"userId": sandbox_account.client_id},
        timeout=TIMEOUT,
    ).json()
    wrong = hashlib.sha256(f"{sandbox_account.client_id}WRONGKEY{enc['encKey']}".encode())
    body = requests.post(
        sandbox.url + G2 + "customer/getUserSID",
        json={"userId": sandbox_account.client_id, "userData": wrong.hexdigest()},
        timeout=TIMEOUT,
    ).json()
    assert body["stat"] == "Not_Ok"
    assert "sessionID" not in body


def test_g2_unknown_user_gets_enc_key_null(sandbox):
    body = requests.post(
        sandbox.url + G2 + "customer/getAPIEncpkey", json={"userId": "NOPE99"}, timeout=TIMEOUT
    ).json()
    assert body["stat"] == "Not_Ok" and body["encKey"] is None


def test_g3_vendor_login_page_redirects_with_auth_code_and_counts_as_daily_sign_in(sandbox):
    acct = sandbox.create_account()
    sandbox.set_redirect_url("http://127.0.0.1:9/broker/callback/?next=x")
    with requests.Session() as web:
        page = web.get(sandbox.login_url, timeout=TIMEOUT)
        assert page.status_code == 200 and 'name="password"' in page.text
        csrf = web.cookies["sbx_csrf"]
        answer = web.post(
            sandbox.url + "/",
            data={
                "csrf": csrf,
                "appcode": sandbox.vendor_app.app_code,
                "client_id": acct.client_id,
                "password": acct.password,
            },
            allow_redirects=False,
            timeout=TIMEOUT,
        )
    assert answer.status_code == 303
    target = urlsplit(answer.headers["Location"])
    assert (target.hostname, target.path) == ("127.0.0.1", "/broker/callback/")
    query = parse_qs(target.query)
    assert query["next"] == ["x"] and query["userId"] == [acct.client_id]
    code = query["authCode"][0]
    checksum = hashlib.sha256(f"{acct.client_id}{code}{acct.api_secret}".encode()).hexdigest()
    first = requests.post(
        sandbox.url + G3 + "vendor/getUserDetails", json={"checkSum": checksum}, timeout=TIMEOUT
    ).json()
    assert first["stat"] == "Ok" and first["clientId"] == acct.client_id
    again = requests.post(
        sandbox.url + G3 + "vendor/getUserDetails", json={"checkSum": checksum}, timeout=TIMEOUT
    ).json()
    assert again == {"stat": "Not_ok", "emsg": MSG_INVALID_AUTH_CODE}  # single use
    # the page sign-in was the daily sign-in: the ANT login works now too
    assert g2_login(sandbox, acct)


def test_vendor_login_page_rejects_a_wrong_password_and_unknown_app(sandbox, sandbox_account):
    with requests.Session() as web:
        web.get(sandbox.login_url, timeout=TIMEOUT)
        wrong = web.post(
            sandbox.url + "/",
            data={
                "csrf": web.cookies["sbx_csrf"],
                "appcode": sandbox.vendor_app.app_code,
                "client_id": sandbox_account.client_id,
                "password": "nope",
            },
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert wrong.status_code == 400 and "Client ID or password is wrong" in wrong.text
        no_csrf = web.post(
            sandbox.url + "/",
            data={
                "appcode": sandbox.vendor_app.app_code,
                "client_id": sandbox_account.client_id,
                "password": sandbox_account.password,
            },
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert no_csrf.status_code == 400
    unknown = requests.get(sandbox.url + "/?appcode=NOTANAPP", timeout=TIMEOUT)
    assert unknown.status_code == 400 and "Unknown app code" in unknown.text


def test_g3_checksum_with_wrong_secret_is_refused(sandbox, sandbox_account):
    code = sandbox.auth_code(sandbox_account.client_id)
    checksum = hashlib.sha256(f"{sandbox_account.client_id}{code}WRONG".encode()).hexdigest()
    body = requests.post(
        sandbox.url + G3 + "vendor/getUserDetails", json={"checkSum": checksum}, timeout=TIMEOUT
    ).json()
    assert body == {"stat": "Not_ok", "emsg": MSG_INVALID_AUTH_CODE}


def test_legacy_sso_get_user_details_path_issues_a_session(sandbox, sandbox_account):
    code = sandbox.auth_code(sandbox_account.client_id)
    checksum = hashlib.sha256(
        f"{sandbox_account.client_id}{code}{sandbox_account.api_secret}".encode()
    ).hexdigest()
    body = requests.post(
        sandbox.url + "/rest/AliceBlueAPIService/sso/getUserDetails",
        json={"checkSum": checksum},
        timeout=TIMEOUT,
    ).json()
    assert body["stat"] == "Ok" and body["userSession"].count(".") == 2


def test_sessions_end_with_the_ist_trading_day(sandbox, sandbox_account):
    sandbox.set_clock(datetime(2026, 7, 27, 23, 0, tzinfo=IST))
    sandbox.daily_login(sandbox_account.client_id)
    g3_headers = g3_login(sandbox, sandbox_account)
    g2_headers = g2_login(sandbox, sandbox_account)
    assert g3(sandbox, "GET", "profile/", g3_headers).json()["status"] == "Ok"
    sandbox.advance(timedelta(hours=1, minutes=1).total_seconds())  # 00:01 IST next day
    expired = g3(sandbox, "GET", "profile/", g3_headers)
    assert expired.status_code == 200
    assert expired.json() == {
        "status": "Not_Ok",
        "message": "EC087",
        "infoMessage": None,
        "result": None,
    }
    assert g2(sandbox, "GET", "customer/accountDetails", g2_headers).status_code == 401
    # a new day needs a new sign-in before API logins work again
    enc = requests.post(
        sandbox.url + G2 + "customer/getAPIEncpkey",
        json={"userId": sandbox_account.client_id},
        timeout=TIMEOUT,
    ).json()
    assert enc["emsg"] == MSG_NOT_LOGGED_IN


def test_forced_session_expiry_hits_only_that_account(sandbox):
    a = sandbox.create_account(daily_login=True)
    b = sandbox.create_account(daily_login=True)
    ha, hb = g3_login(sandbox, a), g3_login(sandbox, b)
    sandbox.expire_sessions(a.client_id)
    assert g3(sandbox, "GET", "limits/", ha).json()["message"] == "EC087"
    assert g3(sandbox, "GET", "limits/", hb).json()["status"] == "Ok"
    assert g3(sandbox, "GET", "limits/", g3_login(sandbox, a)).json()["status"] == "Ok"


def test_missing_or_garbage_authorization_is_ec087_and_401(sandbox):
    assert g3(sandbox, "GET", "orders/book", {}).json()["message"] == "EC087"
    assert (
        g3(sandbox, "GET", "orders/book", {"Authorization": "Bearer x.y.z"}).json()["message"]
        == "EC087"
    )
    assert g2(sandbox, "GET", "placeOrder/fetchOrderBook", {}).status_code == 401


def test_g2_session_is_bound_to_its_user_id(sandbox):
    a = sandbox.create_account(daily_login=True)
    b = sandbox.create_account(daily_login=True)
    token = g2_login(sandbox, a)["Authorization"].split()[-1]
    forged = {"Authorization": f"Bearer {b.client_id} {token}"}
    assert g2(sandbox, "GET", "customer/accountDetails", forged).status_code == 401


def test_g3_session_is_accepted_on_the_scrip_quote_endpoint(sandbox, sandbox_account):
    session = g3_session(sandbox, sandbox_account)
    for header in (f"Bearer {sandbox_account.client_id} {session}", f"Bearer {session}"):
        quote = g2(
            sandbox,
            "POST",
            "ScripDetails/getScripQuoteDetails",
            {"Authorization": header},
            {"exch": "NSE", "symbol": "1594"},
        ).json()
        assert quote["stat"] == "Ok" and quote["TSymbl"] == "INFY-EQ"
