"""Security headers on every page (CSP without unsafe-inline/unsafe-eval), pages that the CSP
does not break (no inline scripts, styles or handlers), and a CSRF token in every form."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import login

pytestmark = pytest.mark.django_db


def _assert_security_headers(response) -> None:
    csp = response["Content-Security-Policy"]
    directives = dict(
        ([*part.strip().split(" ", 1), ""])[:2] for part in csp.split(";") if part.strip()
    )
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert directives["form-action"] == "'self'"
    assert directives["base-uri"] == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


_FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)
_INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I)
_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)


def _assert_csp_safe_markup_and_csrf(html: str, url: str) -> None:
    assert not _INLINE_SCRIPT.search(html), f"inline <script> on {url}"
    assert "<style" not in html.lower(), f"inline <style> on {url}"
    assert not re.search(r"\sstyle\s*=", html, re.I), f"style attribute on {url}"
    assert not _HANDLER.search(html), f"inline event handler on {url}"
    assert "javascript:" not in html.lower(), url
    for attrs, body in _FORM.findall(html):
        if re.search(r'method\s*=\s*"post"', attrs, re.I):
            assert 'name="csrfmiddlewaretoken"' in body, (
                f"form without CSRF token on {url}: {attrs}"
            )


def _pages(master_x, follower_a) -> list[tuple[str, str]]:
    fa = follower_a.pk
    return [
        ("master", reverse("accounts:follower_list")),
        ("master", reverse("accounts:follower_register")),
        ("master", reverse("accounts:follower_detail", args=[fa])),
        ("master", reverse("accounts:follower_limits", args=[fa])),
        ("master", reverse("accounts:follower_credentials", args=[fa])),
        ("master", reverse("accounts:follower_reset_password", args=[fa])),
        ("master", reverse("accounts:follower_deactivate", args=[fa])),
        ("master", reverse("accounts:broker_account")),
        ("master", reverse("accounts:backup_codes")),
        ("master", reverse("accounts:password_change")),
        ("master", reverse("trading:master_dashboard")),
        ("follower", reverse("accounts:me")),
        ("follower", reverse("accounts:password_change")),
        ("follower", reverse("trading:follower_board")),
    ]


def test_every_page_sends_security_headers_and_csp_safe_markup(master_x, follower_a):
    anonymous = Client()
    for url in (reverse("accounts:login"), "/healthz"):
        response = anonymous.get(url)
        _assert_security_headers(response)
    _assert_csp_safe_markup_and_csrf(
        anonymous.get(reverse("accounts:login")).content.decode(), "login"
    )
    clients = {
        "master": login(Client(), master_x.user),
        "follower": login(Client(), follower_a.user),
    }
    for who, url in _pages(master_x, follower_a):
        response = clients[who].get(url)
        assert response.status_code == 200, url
        _assert_security_headers(response)
        _assert_csp_safe_markup_and_csrf(response.content.decode(), url)


def test_second_factor_pages_are_csp_safe(master_y):
    client = Client()
    client.force_login(master_y.user)
    enrol = client.get(reverse("accounts:otp_enrol"))
    assert enrol.status_code == 200
    _assert_security_headers(enrol)
    _assert_csp_safe_markup_and_csrf(enrol.content.decode(), "enrol")
    TOTPDevice.objects.filter(user=master_y.user).update(confirmed=True)
    verify = client.get(reverse("accounts:otp_verify"))
    assert verify.status_code == 200
    _assert_csp_safe_markup_and_csrf(verify.content.decode(), "verify")


def test_pages_with_errors_and_one_time_secrets_are_csp_safe(client: Client, master_x):
    login(client, master_x.user)
    bad = client.post(reverse("accounts:follower_register"), {"display_name": "x"})
    assert bad.status_code == 422
    _assert_csp_safe_markup_and_csrf(bad.content.decode(), "register errors")
    ok = client.post(
        reverse("accounts:follower_register"),
        {
            "display_name": "Headers",
            "client_id": "HD0001",
            "login_method": "oauth",
            "lot_multiplier": "1",
            "max_quantity": "1",
            "max_order_value": "1",
            "max_daily_loss": "1",
            "allowed_product_types": ["MIS"],
        },
    )
    assert ok.status_code == 200
    _assert_security_headers(ok)
    _assert_csp_safe_markup_and_csrf(ok.content.decode(), "login once")
    assert "no-store" in ok["Cache-Control"]
