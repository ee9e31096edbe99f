"""The board poll's raw session check (trading.fastauth) agrees with Django's authentication:
every session Django would refuse gets the login redirect, never a 204 "unchanged"."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user
from django.contrib.sessions.models import Session
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from tests.conftest import login
from tests.factories import CopyTradeFactory
from trading import fastauth

URL = reverse("trading:follower_board")
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def polling(client, follower_a):
    """A logged-in follower's client and the version its board shows."""
    CopyTradeFactory(follower=follower_a)
    login(client, follower_a.user)
    html = client.get(URL).content.decode()
    token = re.search(r'data-version="([0-9a-f]+)"', html).group(1)
    assert client.get(URL, {"since": token}, **HTMX).status_code == 204
    return client, token


def _poll_is_sent_to_login(client, token) -> bool:
    response = client.get(URL, {"since": token}, **HTMX)
    return response.status_code == 204 and response.get("HX-Redirect", "").startswith(
        reverse("accounts:login")
    )


def _session_key(client) -> str:
    return client.cookies["sessionid"].value


def test_current_session_gets_204_without_redirect(polling):
    client, token = polling
    response = client.get(URL, {"since": token}, **HTMX)
    assert response.status_code == 204
    assert "HX-Redirect" not in response
    assert "Cookie" in response["Vary"]


def test_expired_session_is_sent_to_login(polling):
    client, token = polling
    Session.objects.filter(session_key=_session_key(client)).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    assert _poll_is_sent_to_login(client, token)


def test_logged_out_session_is_sent_to_login(polling):
    client, token = polling
    Session.objects.filter(session_key=_session_key(client)).delete()
    assert _poll_is_sent_to_login(client, token)


def test_password_change_ends_the_session(polling, follower_a):
    client, token = polling
    follower_a.user.set_password("a-brand-new-password-123")
    follower_a.user.save()
    assert _poll_is_sent_to_login(client, token)


def test_deactivated_user_is_sent_to_login(polling, follower_a):
    client, token = polling
    follower_a.user.is_active = False
    follower_a.user.save()
    assert _poll_is_sent_to_login(client, token)


def test_tampered_session_data_is_refused(polling):
    client, token = polling
    Session.objects.filter(session_key=_session_key(client)).update(session_data="garbage:x")
    assert _poll_is_sent_to_login(client, token)


def test_forged_cookie_is_refused(polling):
    client, token = polling
    client.cookies["sessionid"] = "x" * 32
    assert _poll_is_sent_to_login(client, token)


def test_master_session_never_gets_a_follower_204(client, master_x, follower_a):
    login(client, master_x.user)
    response = client.get(URL, {"since": "anything"}, **HTMX)
    assert response.status_code == 403


def test_other_session_engines_fall_back_to_django(polling, settings):
    client, _ = polling
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    request = RequestFactory().get(URL, HTTP_COOKIE=f"sessionid={_session_key(client)}")
    assert fastauth.session_login(request) is None


def test_unlisted_backend_falls_back(polling, settings):
    client, _ = polling
    request = RequestFactory().get(URL)
    request.COOKIES["sessionid"] = _session_key(client)
    assert fastauth.session_login(request) is not None
    settings.AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend"]
    assert fastauth.session_login(request) is None


@pytest.mark.parametrize(
    "damage", ["none", "expired", "deleted", "password", "inactive", "garbage", "hash"]
)
def test_fast_check_agrees_with_django_get_user(client, follower_a, damage):
    login(client, follower_a.user)
    key = _session_key(client)
    user = follower_a.user
    sessions = Session.objects.filter(session_key=key)
    if damage == "expired":
        sessions.update(expire_date=timezone.now() - timedelta(seconds=1))
    elif damage == "deleted":
        sessions.delete()
    elif damage == "password":
        user.set_password("another-password-456")
        user.save()
    elif damage == "inactive":
        user.is_active = False
        user.save()
    elif damage == "garbage":
        sessions.update(session_data="nonsense")
    elif damage == "hash":
        store = client.session
        store["_auth_user_hash"] = "0" * 64
        store.save()

    def request():
        r = RequestFactory().get(URL)
        r.COOKIES["sessionid"] = key
        from importlib import import_module

        from django.conf import settings

        r.session = import_module(settings.SESSION_ENGINE).SessionStore(key)
        return r

    django_says = get_user(request()).is_authenticated
    fast = fastauth.session_login(request())
    if fast is None:
        fast_says = False
    else:
        user.refresh_from_db()
        fast_says = fastauth.verifies(fast, password_hash=user.password, is_active=user.is_active)
    assert fast_says == django_says
    assert django_says == (damage == "none")
