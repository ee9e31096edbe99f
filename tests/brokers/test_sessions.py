"""Broker session records and the connect views, without the broker: the daily rule, expiry,
who may connect what, and the OAuth callback's binding checks. (The full flows against the
sandbox broker are in test_sandbox_*.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from accounts import crypto
from accounts.models import BrokerAccount
from tests.conftest import login
from trading.brokers import sessions
from trading.brokers.aliceblue.errors import NeedsDailyLogin, SessionExpired
from trading.brokers.aliceblue.types import Generation
from trading.models import AuditEvent, BrokerSession

NOW = datetime(2026, 3, 3, 4, 0, tzinfo=UTC)  # 09:30 IST


def _ready(account: BrokerAccount, *, day=None, token="session-token-0123456789") -> BrokerSession:
    return BrokerSession.objects.create(
        account=account,
        state=BrokerSession.State.READY,
        generation=sessions.generation_for(account).value,
        session_token_encrypted=crypto.seal(token)[0],
        trading_day=day or sessions.trading_day(NOW),
        obtained_at=NOW,
    )


def test_trading_day_is_the_ist_date():
    assert str(sessions.trading_day(datetime(2026, 3, 3, 19, 0, tzinfo=UTC))) == "2026-03-04"


def test_session_for_returns_todays_session(master_x):
    account = master_x.user.broker_account
    _ready(account)
    session = sessions.session_for(account=account, at=NOW)
    assert session.generation is Generation.ANT
    assert session.client_id == "MX0001" and session.account_id == account.pk
    assert session.token.reveal() == "session-token-0123456789"


def test_a_previous_days_session_is_never_used(master_x):
    account = master_x.user.broker_account
    _ready(account, day=sessions.trading_day(NOW - timedelta(days=1)))
    with pytest.raises(NeedsDailyLogin, match="previous trading day"):
        sessions.session_for(account=account, at=NOW)
    record = BrokerSession.objects.get(account=account)
    assert record.state == BrokerSession.State.NEEDS_LOGIN
    assert record.session_token_encrypted == ""


def test_no_session_needs_todays_login(master_x):
    with pytest.raises(NeedsDailyLogin):
        sessions.session_for(account=master_x.user.broker_account)


def test_mark_expired_drops_the_token_and_session_for_says_so(master_x):
    account = master_x.user.broker_account
    _ready(account, day=sessions.trading_day())
    assert sessions.mark_expired(account=account, reason="EC087 Session Expired")
    assert not sessions.mark_expired(account=account, reason="again")  # conditional
    with pytest.raises(SessionExpired, match="EC087"):
        sessions.session_for(account=account)
    assert BrokerSession.objects.get(account=account).session_token_encrypted == ""


def test_may_connect_matrix(master_x, master_y, follower_a, follower_c):
    own = master_x.user.broker_account
    fa = follower_a.user.broker_account
    fc = follower_c.user.broker_account
    assert sessions.may_connect(master_x.user, own)
    assert sessions.may_connect(master_x.user, fa)
    assert not sessions.may_connect(master_x.user, fc)
    assert not sessions.may_connect(master_y.user, fa)
    assert not sessions.may_connect(follower_a.user, fa)  # API key: the master connects
    assert sessions.may_connect(follower_a.user, fa, oauth=True)
    assert not sessions.may_connect(follower_a.user, own, oauth=True)


def test_disconnect_is_audited(master_x):
    account = master_x.user.broker_account
    _ready(account, day=sessions.trading_day())
    sessions.disconnect(account=account, actor=master_x.user)
    assert BrokerSession.objects.get(account=account).state == BrokerSession.State.NEEDS_LOGIN
    event = AuditEvent.objects.get(action="broker_session.disconnect")
    assert event.actor == master_x.user and event.master == master_x


# --- views ---------------------------------------------------------------------------------------
def test_session_panel_for_the_master_and_404_for_a_stranger(client, master_x, master_y):
    account = master_x.user.broker_account
    url = reverse("trading:broker_session", args=[account.pk])
    login(client, master_x.user)
    response = client.get(url)
    assert response.status_code == 200
    assert b"Needs today&#x27;s login" in response.content
    assert "HX-Request" in response["Vary"]
    partial = client.get(url, headers={"HX-Request": "true"})
    assert b"<html" not in partial.content and b"broker-session-" in partial.content
    login(client, master_y.user)
    assert client.get(url).status_code == 404


def test_views_need_login_and_the_right_method(client, master_x):
    account = master_x.user.broker_account
    connect = reverse("trading:broker_connect", args=[account.pk])
    assert client.post(connect).status_code == 302  # to the login page
    login(client, master_x.user)
    assert client.get(connect).status_code == 405
    assert client.post(reverse("trading:broker_callback")).status_code == 405


def test_master_without_second_factor_gets_404(client, master_x):
    client.force_login(master_x.user)
    url = reverse("trading:broker_session", args=[master_x.user.broker_account.pk])
    assert client.get(url).status_code == 404


def test_follower_cannot_connect_an_api_key_account(client, follower_a):
    account = follower_a.user.broker_account
    login(client, follower_a.user)
    assert client.get(reverse("trading:broker_session", args=[account.pk])).status_code == 200
    assert client.post(reverse("trading:broker_connect", args=[account.pk])).status_code == 404


def test_connect_without_an_api_key_shows_the_error(client, master_x):
    account = master_x.user.broker_account
    account.wipe_credentials()
    account.save()
    login(client, master_x.user)
    response = client.post(reverse("trading:broker_connect", args=[account.pk]))
    assert response.status_code == 400
    assert sessions.NO_API_KEY.encode().replace(b"'", b"&#x27;") in response.content


def test_oauth_connect_redirects_to_the_login_page_with_the_app_code(client, master_x, settings):
    settings.ALICEBLUE_APP_CODE = "APPCODE123456"
    settings.ALICEBLUE_API_SECRET = "secret-abcdefghijklmnop"
    account = master_x.user.broker_account
    account.login_method = BrokerAccount.LoginMethod.OAUTH
    account.save()
    login(client, master_x.user)
    response = client.post(reverse("trading:broker_connect", args=[account.pk]))
    assert response.status_code == 302
    assert response["Location"] == settings.ALICEBLUE_LOGIN_URL + "?appcode=APPCODE123456"
    assert client.session[sessions.OAUTH_SESSION_KEY]["account_id"] == account.pk
    htmx = client.post(
        reverse("trading:broker_connect", args=[account.pk]), headers={"HX-Request": "true"}
    )
    assert htmx.status_code == 204 and "appcode=APPCODE123456" in htmx["HX-Redirect"]


def test_callback_without_a_started_sign_in_is_refused(client, master_x):
    login(client, master_x.user)
    response = client.get(reverse("trading:broker_callback"), {"authCode": "x", "userId": "MX0001"})
    assert response.status_code == 400
    assert b"No AliceBlue sign-in was started" in response.content
    assert not BrokerSession.objects.filter(state=BrokerSession.State.READY).exists()


def test_callback_for_another_aliceblue_user_is_refused(client, master_x, settings):
    settings.ALICEBLUE_APP_CODE = "APPCODE123456"
    settings.ALICEBLUE_API_SECRET = "secret-abcdefghijklmnop"
    account = master_x.user.broker_account
    account.login_method = BrokerAccount.LoginMethod.OAUTH
    account.save()
    login(client, master_x.user)
    client.post(reverse("trading:broker_connect", args=[account.pk]))
    response = client.get(
        reverse("trading:broker_callback"), {"authCode": "code", "userId": "SOMEONE9"}
    )
    assert response.status_code == 400
    assert b"You signed in to AliceBlue as SOMEONE9" in response.content
    # single use: the binding is gone
    again = client.get(reverse("trading:broker_callback"), {"authCode": "c", "userId": "MX0001"})
    assert b"No AliceBlue sign-in was started" in again.content


def test_a_sign_in_started_by_another_user_cannot_be_completed(client, master_x, follower_a):
    login(client, follower_a.user)
    session = client.session
    session[sessions.OAUTH_SESSION_KEY] = {
        "account_id": master_x.user.broker_account.pk,
        "user_id": master_x.user.pk,
        "nonce": "n",
        "started": datetime.now(UTC).isoformat(),
    }
    session.save()
    response = client.get(reverse("trading:broker_callback"), {"authCode": "x", "userId": "MX0001"})
    assert response.status_code == 400
    assert b"No AliceBlue sign-in was started" in response.content


def test_the_session_tag_renders_state_and_buttons_for_pages_that_show_an_account(
    rf, master_x, follower_a
):
    from django.template import Context, Template

    account = follower_a.user.broker_account
    _ready(account, day=sessions.trading_day())
    request = rf.get("/master/followers/")
    request.user = master_x.user
    html = Template("{% load broker_session %}{% broker_session account %}").render(
        Context({"request": request, "account": account})
    )
    assert "Ready for today" in html
    assert reverse("trading:broker_disconnect", args=[account.pk]) in html
    assert 'value="/master/followers/"' in html
    request.user = follower_a.user  # API-key account: the follower sees no buttons
    html = Template("{% load broker_session %}{% broker_session account %}").render(
        Context({"request": request, "account": account})
    )
    assert "Ready for today" in html and "Disconnect" not in html


def test_end_previous_days_ends_only_old_sessions(master_x, follower_a):
    old = master_x.user.broker_account
    new = follower_a.user.broker_account
    _ready(old, day=sessions.trading_day(NOW - timedelta(days=1)))
    _ready(new, day=sessions.trading_day(NOW))
    assert sessions.end_previous_days(at=NOW) == 1
    assert BrokerSession.objects.get(account=old).state == BrokerSession.State.NEEDS_LOGIN
    assert BrokerSession.objects.get(account=new).state == BrokerSession.State.READY


def test_set_push_state(master_x):
    account = master_x.user.broker_account
    _ready(account)
    sessions.set_push_state(account_id=account.pk, state="not_enabled")
    assert BrokerSession.objects.get(account=account).push_state == "not_enabled"
