"""The follower's board in a real browser: log in through the page, see the copies, and see a
new copy appear by the 5 s poll without a reload; polling pauses in a hidden tab; an expired
login during a poll lands on the login page."""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.sessions.models import Session

from tests.e2e import conftest as e2e
from tests.e2e.conftest import browser_password
from tests.factories import CopyTradeFactory

pytestmark = pytest.mark.e2e

BADGE_COLOURS = {  # background colours from static/css/app.css
    "SUCCESS": "rgb(232, 245, 233)",
    "FAILED": "rgb(253, 236, 234)",
    "PENDING": "rgb(238, 242, 255)",
    "SKIPPED": "rgb(241, 245, 249)",
}


def log_in(page, user) -> None:  # type: ignore[no-untyped-def]
    e2e.log_in(page, user.get_username(), browser_password(user))


def stat(page, name: str) -> int:  # type: ignore[no-untyped-def]
    return int(page.locator(f'[data-stat="{name}"] dd').inner_text())


def test_board_updates_by_itself_and_shows_badges(new_page, follower_a, follower_b):
    CopyTradeFactory(follower=follower_a, status="SUCCESS", trading_symbol="INFY-EQ")
    CopyTradeFactory(follower=follower_b, status="SUCCESS", trading_symbol="TCS-EQ")
    page = new_page()
    log_in(page, follower_a.user)
    page.wait_for_url(re.compile(r"/board/$"))
    assert page.locator("tbody tr").count() == 1
    assert "TCS-EQ" not in page.content()
    assert stat(page, "today-total") == 1

    failed = CopyTradeFactory(
        follower=follower_a,
        status="FAILED",
        trading_symbol="SBIN-EQ",
        master_quantity=10,
        quantity=10,
        reason="RMS: margin exceeds",
    )
    row = page.locator(f"#trade-{failed.pk}")
    started = time.monotonic()
    row.wait_for(timeout=7_000)  # one 5 s poll plus margin
    assert time.monotonic() - started < 7
    assert stat(page, "today-total") == 2 and stat(page, "today-failed") == 1
    for status, colour in BADGE_COLOURS.items():
        badge = page.locator(f".badge-{status}").first
        if badge.count():
            assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == colour
            assert badge.inner_text().strip().upper() == status  # the word, not only colour
    assert row.locator(".badge").inner_text() == "Failed"


def test_polling_pauses_while_hidden_and_catches_up_when_visible(new_page, follower_a):
    page = new_page()
    log_in(page, follower_a.user)
    page.wait_for_url(re.compile(r"/board/$"))
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "since=" in r.url else None)
    page.evaluate(
        """() => {
            Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    page.wait_for_timeout(6_500)
    assert polls == [], "no poll while the tab is hidden"
    trade = CopyTradeFactory(follower=follower_a, status="SUCCESS")
    page.evaluate(
        """() => {
            Object.defineProperty(document, "hidden", {configurable: true, get: () => false});
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    page.locator(f"#trade-{trade.pk}").wait_for(timeout=2_000)  # at once, not after 5 s
    assert polls


def test_expired_login_during_a_poll_goes_to_the_login_page(new_page, follower_a):
    page = new_page()
    log_in(page, follower_a.user)
    page.wait_for_url(re.compile(r"/board/$"))
    Session.objects.all().delete()  # the session ends (expiry, logout elsewhere)
    page.wait_for_url(re.compile(r"/accounts/login/"), timeout=8_000)
    assert page.get_by_label("Username").is_visible()
    assert page.locator("#board").count() == 0


def test_a_follower_cannot_open_another_followers_data(new_page, follower_a, follower_b):
    theirs = CopyTradeFactory(follower=follower_b, trading_symbol="TCS-EQ")
    page = new_page()
    log_in(page, follower_a.user)
    page.wait_for_url(re.compile(r"/board/$"))
    response = page.request.get(f"/api/followers/copy-trades?followerId={follower_b.pk}")
    assert response.ok
    assert all(t["id"] != theirs.pk for t in response.json()["data"])
    assert page.goto("/master/").status == 403
    assert page.goto(f"/accounts/followers/{follower_b.pk}/").status in (403, 404)
