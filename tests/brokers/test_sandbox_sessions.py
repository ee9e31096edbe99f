"""Broker sessions end to end against the sandbox broker: the API-key login and the AliceBlue
sign-in (OAuth: our Connect view → the sandbox's vendor login page over HTTP → our callback
view), the daily-login rule, forced expiry marking the record, the shared request budget, and
no secret in any log line or exception."""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.urls import reverse

from accounts.models import BrokerAccount
from tests.conftest import login
from trading.brokers import sessions
from trading.brokers.aliceblue.client import AliceBlueClient
from trading.brokers.aliceblue.errors import BudgetExhausted, NeedsDailyLogin, SessionExpired
from trading.brokers.aliceblue.types import Generation, OrderRequest, OrderType, Product, Side
from trading.models import AuditEvent, BrokerSession


def link(sbx, account: BrokerAccount, *, oauth: bool = False, signed_in: bool = True):
    """Give a product account a matching sandbox account (credentials and client id)."""
    info = sbx.create_account(funds="1000000", daily_login=signed_in)
    account.client_id = info.client_id
    account.login_method = (
        BrokerAccount.LoginMethod.OAUTH if oauth else BrokerAccount.LoginMethod.API_KEY
    )
    account.set_api_key(info.api_key)
    account.save()
    return info


def test_api_key_connect_makes_a_ready_session_the_client_can_use(sbx, master_x):
    account = master_x.user.broker_account
    link(sbx, account)
    record = sessions.connect_api_key(account=account, actor=master_x.user)
    assert record.state == BrokerSession.State.READY and record.generation == "ant"
    assert AuditEvent.objects.filter(action="broker_session.connect").count() == 1
    session = sessions.session_for(account=account)
    assert session.generation is Generation.ANT
    with AliceBlueClient(session) as broker:
        assert broker.profile().client_id == account.client_id


def test_api_key_connect_before_the_daily_sign_in_needs_daily_login(sbx, master_x):
    account = master_x.user.broker_account
    link(sbx, account, signed_in=False)
    with pytest.raises(NeedsDailyLogin) as caught:
        sessions.connect_api_key(account=account)
    record = BrokerSession.objects.get(account=account)
    assert record.state == BrokerSession.State.NEEDS_LOGIN
    assert record.last_error == caught.value.message  # AliceBlue's own text
    sbx.daily_login(account.client_id)
    assert sessions.connect_api_key(account=account).state == BrokerSession.State.READY


def test_connect_view_shows_aliceblues_text_when_the_owner_has_not_signed_in(sbx, client, master_x):
    account = master_x.user.broker_account
    link(sbx, account, signed_in=False)
    login(client, master_x.user)
    response = client.post(
        reverse("trading:broker_connect", args=[account.pk]), headers={"HX-Request": "true"}
    )
    assert response.status_code == 409
    assert b"Sign in to AliceBlue first today" in response.content


def test_connect_view_connects_an_api_key_account(sbx, client, master_x, follower_a):
    account = follower_a.user.broker_account
    link(sbx, account)
    login(client, master_x.user)
    response = client.post(reverse("trading:broker_connect", args=[account.pk]))
    assert response.status_code == 302
    assert BrokerSession.objects.get(account=account).state == BrokerSession.State.READY
    page = client.get(response["Location"])
    assert b"Connected to AliceBlue for today." in page.content


def _sign_in_on_the_vendor_page(location: str, client_id: str, password: str) -> dict[str, str]:
    """What the account owner's browser does on AliceBlue's (the sandbox's) login page."""
    browser = requests.Session()
    page = browser.get(location, timeout=5)
    assert page.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    appcode = parse_qs(urlsplit(location).query)["appcode"][0]
    answer = browser.post(
        location.split("?")[0],
        data={"csrf": csrf, "appcode": appcode, "client_id": client_id, "password": password},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code in (302, 303), answer.text[:200]
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    return {"authCode": query["authCode"][0], "userId": query["userId"][0]}


@pytest.mark.parametrize("who", ["master", "follower"])
def test_oauth_sign_in_through_the_vendor_page_and_our_callback(sbx, client, follower_a, who):
    account = follower_a.user.broker_account
    info = link(sbx, account, oauth=True, signed_in=False)
    user = follower_a.master.user if who == "master" else follower_a.user
    login(client, user)
    start = client.post(reverse("trading:broker_connect", args=[account.pk]))
    assert start.status_code == 302
    location = start["Location"]
    assert location.startswith(sbx.url + "/?appcode=")

    params = _sign_in_on_the_vendor_page(location, info.client_id, info.password)
    done = client.get(reverse("trading:broker_callback"), params)
    assert done.status_code == 302, done.content[:300]
    assert done["Location"] == reverse("trading:broker_session", args=[account.pk])

    record = BrokerSession.objects.get(account=account)
    assert record.state == BrokerSession.State.READY and record.generation == "open"
    assert info.api_key not in record.session_token_encrypted
    with AliceBlueClient(sessions.session_for(account=account)) as broker:
        assert broker.profile().client_id == info.client_id
    event = AuditEvent.objects.get(action="broker_session.connect")
    assert event.after["method"] == "oauth" and event.actor == user


def test_oauth_callback_with_a_used_auth_code_is_refused(sbx, client, master_x):
    account = master_x.user.broker_account
    info = link(sbx, account, oauth=True)
    login(client, master_x.user)
    location = client.post(reverse("trading:broker_connect", args=[account.pk]))["Location"]
    params = _sign_in_on_the_vendor_page(location, info.client_id, info.password)
    assert client.get(reverse("trading:broker_callback"), params).status_code == 302
    client.post(reverse("trading:broker_connect", args=[account.pk]))
    replay = client.get(reverse("trading:broker_callback"), params)
    assert replay.status_code == 400
    assert BrokerSession.objects.get(account=account).state == BrokerSession.State.ERROR


def test_forced_expiry_marks_the_record_and_later_calls_say_so(sbx, master_x):
    account = master_x.user.broker_account
    link(sbx, account)
    sessions.connect_api_key(account=account)
    sbx.expire_sessions(account.client_id)
    with (
        AliceBlueClient(sessions.session_for(account=account)) as broker,
        pytest.raises(SessionExpired),
    ):
        broker.order_book()
    assert BrokerSession.objects.get(account=account).state == BrokerSession.State.EXPIRED
    with pytest.raises(SessionExpired):
        sessions.session_for(account=account)


def test_the_client_spends_the_shared_budget_on_queries_only(sbx, master_x, settings):
    settings.ALICEBLUE_REQUEST_BUDGET = 3
    account = master_x.user.broker_account
    link(sbx, account)
    sessions.connect_api_key(account=account)
    inst = sbx.instrument("NSE", "INFY-EQ")
    order = OrderRequest(
        exchange="NSE",
        token=str(inst["token"]),
        trading_symbol="INFY-EQ",
        side=Side.BUY,
        quantity=1,
        order_type=OrderType.MARKET,
        product=Product.MIS,
    )
    with AliceBlueClient(sessions.session_for(account=account)) as broker:
        broker.order_book()
        broker.positions()
        broker.funds()
        with pytest.raises(BudgetExhausted):
            broker.order_book()
        ack = broker.place_order(order)  # orders are never budgeted
        assert ack.broker_order_id


def test_no_secret_reaches_a_log_line_or_an_exception(sbx, master_x, caplog):
    caplog.set_level(logging.DEBUG)
    account = master_x.user.broker_account
    info = link(sbx, account)
    sessions.connect_api_key(account=account)
    session = sessions.session_for(account=account)
    token = session.token.reveal()
    errors = []
    with AliceBlueClient(session) as broker:
        broker.order_book()
        sbx.set_faults(account.client_id, error_rate=1.0)
        try:
            broker.funds()
        except Exception as exc:
            errors.append(str(exc))
        sbx.clear_faults(account.client_id)
        sbx.expire_sessions(account.client_id)
        try:
            broker.order_book()
        except Exception as exc:
            errors.append(str(exc))
    text = "\n".join([r.getMessage() for r in caplog.records] + errors)
    for secret in (token, info.api_key):
        assert secret not in text


def test_sandbox_mode_without_a_configured_app_uses_the_sandboxs_vendor_app(
    sbx, master_x, settings
):
    settings.ALICEBLUE_APP_CODE = ""
    settings.ALICEBLUE_API_SECRET = ""
    settings.SANDBOX_STATE_PATH = sbx.state_path
    account = master_x.user.broker_account
    account.login_method = BrokerAccount.LoginMethod.OAUTH
    app = sessions.vendor_app(account)
    assert app.app_code.reveal() == sbx.vendor_app.app_code
    assert app.api_secret.reveal() == sbx.vendor_app.api_secret
    settings.ALICEBLUE_BROKER = "live"
    with pytest.raises(sessions.ConnectError, match="No AliceBlue vendor app"):
        sessions.vendor_app(account)


def test_pooled_client_for_an_account_reuses_its_connection_pool(sbx, master_x):
    from trading.brokers.aliceblue.client import client_for

    account = master_x.user.broker_account
    link(sbx, account)
    sessions.connect_api_key(account=account)
    first = client_for(account.pk)
    second = client_for(account.pk)
    assert first.transport is second.transport
    assert first.profile().client_id == account.client_id
    assert second.funds().available_cash is not None


def test_an_old_sessions_expiry_does_not_clobber_a_reconnect(sbx, master_x):
    account = master_x.user.broker_account
    link(sbx, account)
    sessions.connect_api_key(account=account)
    old = sessions.session_for(account=account)
    sbx.expire_sessions(account.client_id)
    sessions.connect_api_key(account=account)  # reconnected meanwhile (e.g. from the web)
    with AliceBlueClient(old) as broker, pytest.raises(SessionExpired):
        broker.order_book()
    assert BrokerSession.objects.get(account=account).state == BrokerSession.State.READY
    with AliceBlueClient(sessions.session_for(account=account)) as broker:
        assert broker.order_book() == []
