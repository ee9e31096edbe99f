"""The master dashboard through its real URLs: access, live state of the followers, recent
orders with per-follower outcomes and latencies, banners, pause/resume and the kill switch
(the foundation's services), the sandbox account helper, and the poll's 204."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import BrokerAccount, Follower
from tests.conftest import login
from tests.factories import CopyTradeFactory, modified_then_cancelled
from trading import selectors
from trading.models import AuditEvent, BrokerSession, CopierHeartbeat

URL = reverse("trading:master_dashboard")
HTMX = {"HTTP_HX_REQUEST": "true"}


def _version(html: str) -> str:
    match = re.search(r'id="live"[^>]*data-version="([0-9a-f]+)"', html, re.S)
    assert match, "the live part carries its version"
    return match.group(1)


@pytest.fixture
def client_x(client, master_x, follower_a, follower_b):
    return login(client, master_x.user)


def _beat(seconds_ago: float = 0) -> None:
    now = timezone.now()
    CopierHeartbeat.objects.update_or_create(
        name="copier",
        defaults={"pid": 1, "started_at": now, "beat_at": now - timedelta(seconds=seconds_ago)},
    )


# --- access ------------------------------------------------------------------------------------
def test_master_sees_only_its_followers(client_x, follower_c):
    html = client_x.get(URL).content.decode()
    assert 'data-follower="fl_alice"' in html and 'data-follower="fl_bob"' in html
    assert "fl_carol" not in html


def test_followers_and_anonymous_cannot_open_it(client, follower_a):
    assert client.get(URL).status_code == 302
    assert login(client, follower_a.user).get(URL).status_code == 403


def test_master_without_second_factor_is_sent_to_it(client, master_x):
    client.force_login(master_x.user)
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/2fa/" in response["Location"]


# --- the live part and its poll ------------------------------------------------------------------
def test_htmx_gets_only_the_live_part(client_x):
    page = client_x.get(URL)
    live = client_x.get(URL, **HTMX)
    assert b"<html" in page.content and b'id="register-dialog"' in page.content
    assert b"<html" not in live.content and live.content.lstrip().startswith(b'<div id="live"')
    assert "HX-Request" in live["Vary"] and "no-store" in live["Cache-Control"]


def test_poll_is_204_while_nothing_changed_and_200_after(client_x, follower_a):
    version = _version(client_x.get(URL).content.decode())
    assert client_x.get(URL, {"since": version}, **HTMX).status_code == 204
    assert client_x.get(URL, {"since": version}, **HTMX).status_code == 204
    CopyTradeFactory(follower=follower_a, status="SKIPPED")
    changed = client_x.get(URL, {"since": version}, **HTMX)
    assert changed.status_code == 200
    assert _version(changed.content.decode()) != version


def test_forms_in_the_live_part_carry_csrf_tokens(client_x):
    html = client_x.get(URL, **HTMX).content.decode()
    assert html.count('name="csrfmiddlewaretoken"') >= 3  # kill switch + a pause per follower
    assert "@@" not in html


# --- follower state ----------------------------------------------------------------------------
def test_follower_rows_show_session_pause_and_last_copy(client_x, follower_a, follower_b):
    account = BrokerAccount.objects.get(owner=follower_a.user)
    BrokerSession.objects.create(
        account=account, state="ready", trading_day=selectors.trading_day()
    )
    follower_b.is_paused, follower_b.paused_by = True, "follower"
    follower_b.save()
    CopyTradeFactory(follower=follower_a, status="FAILED", trading_symbol="SBIN-EQ", quantity=7)
    html = client_x.get(URL).content.decode()
    alice = html[html.index('data-follower="fl_alice"') :].split("</tr>")[0]
    bob = html[html.index('data-follower="fl_bob"') :].split("</tr>")[0]
    assert "Ready for today" in alice and "Copying" in alice
    assert 'badge-FAILED">Failed' in alice and "SELL" not in alice and "7 SBIN-EQ" in alice
    assert "Needs today" in bob and "Paused by the follower" in bob and "Resume" in bob


def test_followers_needing_login_banner(client_x):
    html = client_x.get(URL).content.decode()
    assert 'data-banner="followers-login"' in html
    assert "Alice" in html.split('data-banner="followers-login"')[1].split("</p>")[0]


def test_copier_banner_follows_the_heartbeat(client_x, settings):
    assert 'data-banner="copier-down"' in client_x.get(URL).content.decode()
    _beat(seconds_ago=1)
    assert 'data-banner="copier-down"' not in client_x.get(URL).content.decode()
    _beat(seconds_ago=settings.COPIER_HEARTBEAT_STALE_SECONDS + 5)
    assert 'data-banner="copier-down"' in client_x.get(URL).content.decode()


def test_master_session_banner(client_x, master_x):
    html = client_x.get(URL).content.decode()
    assert 'data-banner="master-login"' in html
    account = BrokerAccount.objects.get(owner=master_x.user)
    BrokerSession.objects.create(
        account=account, state="ready", trading_day=selectors.trading_day()
    )
    assert 'data-banner="master-login"' not in client_x.get(URL).content.decode()


# --- recent orders -------------------------------------------------------------------------------
def test_recent_orders_expand_to_outcomes_and_latencies(client_x, follower_a, follower_b):
    t0 = timezone.now()
    trade = CopyTradeFactory(follower=follower_a, status="SUCCESS")
    trade.master_accepted_at = t0
    trade.received_at = t0 + timedelta(milliseconds=12)
    trade.sent_at = trade.decided_at + timedelta(milliseconds=30)
    trade.acknowledged_at = trade.sent_at + timedelta(milliseconds=50)
    trade.save()
    CopyTradeFactory(
        follower=follower_b, event=trade.event, status="SKIPPED", reason="Instrument not allowed"
    )
    html = client_x.get(URL).content.decode()
    order = trade.event.master_order
    details = html[html.index(f'<details id="order-{order.pk}"') :].split("</details>")[0]
    assert "1 sent" in details and "1 skipped" in details
    assert "Instrument not allowed" in details
    assert "12 ms" in details and "30 ms" in details and "50 ms" in details
    total = int((trade.acknowledged_at - t0).total_seconds() * 1000)
    assert f"<strong>{total} ms</strong>" in details


def test_order_stats_count_copies_not_their_modify_and_cancel_rows(client_x, follower_a):
    place, modify, cancel = modified_then_cancelled(follower_a, status="SUCCESS")
    html = client_x.get(URL).content.decode()
    order = place.event.master_order
    details = html[html.index(f'<details id="order-{order.pk}"') :].split("</details>")[0]
    assert "1 sent" in details and "3 sent" not in details
    # the changes are still listed, labelled
    for row, label in ((modify, "modify"), (cancel, "cancel")):
        cell = details[details.index(f'id="copy-{row.pk}"') :].split("</td>")[0]
        assert label in cell


def test_no_orders_no_followers_empty_states(client, master_y):
    html = login(client, master_y.user).get(URL).content.decode()
    assert "No followers yet." in html and "No orders yet." in html


# --- actions ----------------------------------------------------------------------------------
def test_pause_and_resume_call_the_services(client_x, follower_a, master_x):
    response = client_x.post(reverse("trading:master_follower_pause", args=[follower_a.pk]))
    assert response.status_code == 302 and response["Location"] == URL
    follower_a.refresh_from_db()
    assert follower_a.is_paused and follower_a.paused_by == "master"
    assert AuditEvent.objects.filter(action="follower.pause", master=master_x).exists()
    live = client_x.post(reverse("trading:master_follower_resume", args=[follower_a.pk]), **HTMX)
    assert live.status_code == 200 and live.content.lstrip().startswith(b'<div id="live"')
    follower_a.refresh_from_db()
    assert not follower_a.is_paused


def test_cannot_pause_a_strangers_follower(client_x, follower_c):
    url = reverse("trading:master_follower_pause", args=[follower_c.pk])
    assert client_x.post(url).status_code == 404
    assert not Follower.objects.get(pk=follower_c.pk).is_paused


def test_actions_refuse_get_and_followers(client, follower_a):
    url = reverse("trading:master_follower_pause", args=[follower_a.pk])
    assert login(client, follower_a.user).post(url).status_code == 403


def test_kill_switch(client_x, master_x):
    url = reverse("trading:master_kill_switch")
    assert client_x.get(url).status_code == 405
    assert client_x.post(url, {"entries": "maybe"}).status_code == 400
    client_x.post(url, {"entries": "pause"})
    master_x.refresh_from_db()
    assert master_x.entries_paused
    html = client_x.get(URL).content.decode()
    assert 'data-banner="kill-switch"' in html and 'value="resume"' in html
    client_x.post(url, {"entries": "resume"}, **HTMX)
    master_x.refresh_from_db()
    assert not master_x.entries_paused
    assert AuditEvent.objects.filter(action="master.kill_switch.on").exists()


# --- registration dialog and the sandbox helper --------------------------------------------------
def test_register_dialog_falls_back_to_the_registration_page(client_x):
    html = client_x.get(URL).content.decode()
    register = reverse("accounts:follower_register")
    assert f'href="{register}"' in html and f'hx-get="{register}"' in html
    assert 'data-dialog-open="register-dialog"' in html
    assert '<dialog id="register-dialog"' in html


def test_sandbox_account_for_a_new_follower(client_x, settings, tmp_path):
    settings.ALICEBLUE_BROKER = "sandbox"
    settings.SANDBOX_STATE_PATH = tmp_path / "sandbox.sqlite3"
    response = client_x.post(reverse("trading:master_sandbox_account"), **HTMX)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    client_id = re.search(r'data-sandbox-client="(\w+)"', response.content.decode()).group(1)
    from sandbox.store import Store

    store = Store(settings.SANDBOX_STATE_PATH)
    try:
        account = store.account(client_id)
    finally:
        store.close()
    assert account is not None and account.api_key in response.content.decode()


def test_no_sandbox_accounts_against_the_live_broker(client_x, settings):
    settings.ALICEBLUE_BROKER = "live"
    assert client_x.post(reverse("trading:master_sandbox_account")).status_code == 404


# --- with the copy engine's records ------------------------------------------------------------
def test_todays_pnl_against_the_loss_limit(client_x, follower_a, follower_b):
    from decimal import Decimal

    from trading.models import DailyPnl

    follower_a.max_daily_loss = Decimal("10000")
    follower_a.save()
    follower_b.max_daily_loss = Decimal("1000")
    follower_b.save()
    now = timezone.now()
    for follower, realised, unrealised in (
        (follower_a, "-2000", "-500"),
        (follower_b, "-900", "-200"),
    ):
        DailyPnl.objects.create(
            account=BrokerAccount.objects.get(owner=follower.user),
            trading_day=selectors.trading_day(),
            realised=Decimal(realised),
            unrealised=Decimal(unrealised),
            as_of=now,
        )
    html = client_x.get(URL).content.decode()
    alice = html[html.index('data-follower="fl_alice"') :].split("</tr>")[0]
    assert "-2500.00" in alice and 'value="25"' in alice
    assert 'data-banner="daily-loss"' in html
    assert "Bob" in html.split('data-banner="daily-loss"')[1].split("</p>")[0]


@pytest.mark.parametrize(
    ("state", "banner"),
    [("session_expired", "feed-lost"), ("silent", "feed-degraded"), ("connected", None)],
)
def test_feed_banners(client_x, master_x, state, banner):
    from trading.models import MasterFeed

    MasterFeed.objects.create(master=master_x, push_state=state)
    html = client_x.get(URL).content.decode()
    for name in ("feed-lost", "feed-degraded"):
        assert (f'data-banner="{name}"' in html) == (name == banner)


def test_manual_copy_dialog(client_x, master_x, infy):
    from trading.models import MasterOrder

    page = client_x.get(URL).content.decode()
    assert 'data-dialog-open="manual-dialog"' in page and 'href="/manual/"' in page
    url = reverse("trading:master_manual_copy")
    form = client_x.get(url, **HTMX)
    assert form.status_code == 200 and b'id="manual-copy-form"' in form.content
    bad = client_x.post(
        url,
        {
            "exchange": "NSE",
            "symbol": "INFY-EQ",
            "side": "BUY",
            "quantity": "0",
            "order_type": "LIMIT",
            "product": "MIS",
        },
        **HTMX,
    )
    assert bad.status_code == 422 and b"has-error" in bad.content
    assert not MasterOrder.objects.exists()
    ok = client_x.post(
        url,
        {
            "exchange": "NSE",
            "symbol": "INFY-EQ",
            "side": "BUY",
            "quantity": "10",
            "order_type": "MARKET",
            "product": "MIS",
        },
        **HTMX,
    )
    assert ok.status_code == 200 and b"data-manual-recorded" in ok.content
    order = MasterOrder.objects.get()
    assert order.manual and order.master == master_x and order.quantity == 10


def test_manual_copy_dialog_shows_the_services_errors_next_to_fields(client_x, infy):
    """A form that validates but that the service refuses (unknown symbol, LIMIT without a
    price): 422 with each error beside its field, nothing recorded; never a 500."""
    from trading.models import MasterOrder

    bad = client_x.post(
        reverse("trading:master_manual_copy"),
        {
            "exchange": "NSE",
            "symbol": "NOPE",
            "side": "BUY",
            "quantity": "10",
            "order_type": "LIMIT",
            "product": "MIS",
        },
        **HTMX,
    )
    assert bad.status_code == 422
    body = bad.content.decode()
    assert "No instrument NOPE on NSE" in body
    assert "A LIMIT order needs a price above 0." in body
    assert not MasterOrder.objects.exists()


def test_manual_copy_dialog_is_for_masters(client, follower_a):
    assert (
        login(client, follower_a.user).get(reverse("trading:master_manual_copy")).status_code == 403
    )
