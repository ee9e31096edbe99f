"""The follower's live board through its real URL: access, statistics, badges, pagination, and
the 5 s poll that answers 204 without reading the trades while nothing changed."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import BrokerAccount, User
from tests.conftest import login
from tests.factories import CopyTradeFactory, modified_then_cancelled
from trading import selectors
from trading.models import BrokerSession, CopyTrade
from trading.views import BOARD_PAGE_SIZE

URL = reverse("trading:follower_board")
HTMX = {"HTTP_HX_REQUEST": "true"}
IST = ZoneInfo("Asia/Kolkata")


def _token(html: str) -> str:
    match = re.search(r'data-version="([0-9a-f]+)"', html)
    assert match, "the board carries its version"
    return match.group(1)


def _stat(html: str, name: str) -> int:
    match = re.search(rf'data-stat="{name}"><dt>[^<]+</dt><dd>(\d+)</dd>', html)
    assert match, f"stat {name} rendered"
    return int(match.group(1))


@pytest.fixture
def client_a(client, follower_a):
    return login(client, follower_a.user)


# --- access ------------------------------------------------------------------------------------
def test_anonymous_is_sent_to_login(client, db):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_anonymous_htmx_poll_gets_a_client_redirect_not_a_login_page(client, db):
    response = client.get(URL, {"since": "x"}, **HTMX)
    assert response.status_code == 204
    assert response["HX-Redirect"].startswith(reverse("accounts:login"))
    assert b"<form" not in response.content


@pytest.mark.parametrize("persona", ["master_x", "staff"])
def test_non_followers_are_refused(client, persona, request):
    obj = request.getfixturevalue(persona)
    user = obj if isinstance(obj, User) else obj.user
    response = login(client, user).get(URL)
    assert response.status_code == 403


def test_wrong_method_is_refused(client_a):
    assert client_a.post(URL).status_code == 405


def test_follower_sees_only_its_own_trades(client_a, follower_a, follower_b, follower_c):
    mine = CopyTradeFactory(follower=follower_a, trading_symbol="INFY-EQ")
    theirs = CopyTradeFactory(follower=follower_b, trading_symbol="TCS-EQ")
    stranger = CopyTradeFactory(follower=follower_c, trading_symbol="SBIN-EQ")
    html = client_a.get(URL).content.decode()
    assert f'id="trade-{mine.id}"' in html
    assert f'id="trade-{theirs.id}"' not in html and "TCS-EQ" not in html
    assert f'id="trade-{stranger.id}"' not in html and "SBIN-EQ" not in html


def test_copy_trades_for_carries_the_access_rule(follower_a, follower_b, follower_c, staff):
    a = CopyTradeFactory(follower=follower_a)
    b = CopyTradeFactory(follower=follower_b)
    c = CopyTradeFactory(follower=follower_c)
    assert list(selectors.copy_trades_for(follower_a.user)) == [a]
    assert set(selectors.copy_trades_for(follower_a.master.user)) == {a, b}
    assert list(selectors.copy_trades_for(follower_c.master.user)) == [c]
    assert list(selectors.copy_trades_for(staff)) == []


# --- the page ----------------------------------------------------------------------------------
def test_plain_get_renders_the_whole_page_and_htmx_only_the_board(client_a, follower_a):
    CopyTradeFactory(follower=follower_a)
    page = client_a.get(URL)
    assert page.status_code == 200
    assert b"<html" in page.content and b'id="board"' in page.content
    partial = client_a.get(URL, **HTMX)
    assert partial.status_code == 200
    assert b"<html" not in partial.content
    assert partial.content.lstrip().startswith(b'<section id="board"')
    for response in (page, partial):
        assert "HX-Request" in response["Vary"]
        assert "no-store" in response["Cache-Control"]


def test_board_shows_quantities_status_badges_and_reason(client_a, follower_a):
    CopyTradeFactory(
        follower=follower_a,
        master_quantity=10,
        quantity=25,
        status="SKIPPED",
        reason="Instrument not in your allowed list",
    )
    CopyTradeFactory(follower=follower_a, status="FAILED", reason="RMS: margin exceeds")
    html = client_a.get(URL).content.decode()
    assert '<span class="badge badge-SKIPPED">Skipped</span>' in html
    assert '<span class="badge badge-FAILED">Failed</span>' in html
    assert '<span data-field="follower-qty">25</span>' in html
    assert '<span data-field="master-qty">10</span>' in html
    assert "Instrument not in your allowed list" in html


def test_newest_first(client_a, follower_a):
    now = timezone.now()
    old = CopyTradeFactory(follower=follower_a, decided_at=now - timedelta(hours=1))
    new = CopyTradeFactory(follower=follower_a, decided_at=now)
    html = client_a.get(URL).content.decode()
    assert html.index(f"trade-{new.id}") < html.index(f"trade-{old.id}")


def test_empty_state(client_a):
    html = client_a.get(URL).content.decode()
    assert "No copy trades yet" in html
    assert _stat(html, "overall-total") == 0


def test_statistics_today_and_overall(client_a, follower_a):
    now = timezone.now()
    for status in ["SUCCESS", "SUCCESS", "PENDING", "SENDING", "FAILED", "SKIPPED", "EXPIRED"]:
        CopyTradeFactory(follower=follower_a, status=status)
    CopyTradeFactory(follower=follower_a, status="UNKNOWN", decided_at=now - timedelta(days=2))
    CopyTradeFactory(follower=follower_a, status="SUCCESS", decided_at=now - timedelta(days=3))
    html = client_a.get(URL).content.decode()
    assert _stat(html, "today-total") == 7
    assert _stat(html, "today-successful") == 2
    assert _stat(html, "today-pending") == 2
    assert _stat(html, "today-failed") == 1
    assert _stat(html, "today-skipped") == 1
    assert _stat(html, "today-expired") == 1
    assert _stat(html, "today-unknown") == 0
    assert _stat(html, "overall-total") == 9
    assert _stat(html, "overall-successful") == 3
    assert _stat(html, "overall-unknown") == 1


def test_statistics_count_a_modified_then_cancelled_order_once_and_list_its_rows(
    client_a, follower_a
):
    place, modify, cancel = modified_then_cancelled(follower_a, status="SUCCESS")
    html = client_a.get(URL).content.decode()
    for name in ("today", "overall"):
        assert _stat(html, f"{name}-total") == 1
        assert _stat(html, f"{name}-successful") == 1
    for row in (place, modify, cancel):
        assert f'id="trade-{row.id}"' in html


def test_pagination_counts_modify_and_cancel_rows(client_a, follower_a):
    # fewer copied orders than a page, more rows than a page: the last rows stay reachable
    now = timezone.now()
    for i in range(BOARD_PAGE_SIZE // 3 + 1):
        modified_then_cancelled(follower_a, decided_at=now - timedelta(minutes=i))
    first = client_a.get(URL).content.decode()
    assert _stat(first, "overall-total") == BOARD_PAGE_SIZE // 3 + 1
    assert "Page 1 of 2" in first
    second = client_a.get(URL, {"page": 2}).content.decode()
    listed = first.count('id="trade-') + second.count('id="trade-')
    assert listed == CopyTrade.objects.filter(follower=follower_a).count()


def test_today_is_the_indian_trading_day(follower_a):
    # 00:30 IST on 27 Nov is 19:00 UTC on 26 Nov: a trade at 23:50 IST on the 26th is not
    # "today" although it is the same UTC date; one at 00:10 IST on the 27th is.
    now = datetime(2026, 11, 27, 0, 30, tzinfo=IST)
    CopyTradeFactory(follower=follower_a, decided_at=datetime(2026, 11, 26, 23, 50, tzinfo=IST))
    CopyTradeFactory(follower=follower_a, decided_at=datetime(2026, 11, 27, 0, 10, tzinfo=IST))
    assert selectors.trading_day(now).isoformat() == "2026-11-27"
    assert selectors.today_stats_for_follower(follower_a.id, now=now).total == 1


def test_pagination(client_a, follower_a):
    now = timezone.now()
    trades = [
        CopyTradeFactory(follower=follower_a, decided_at=now - timedelta(seconds=i))
        for i in range(BOARD_PAGE_SIZE + 5)
    ]
    first = client_a.get(URL).content.decode()
    assert first.count('id="trade-') == BOARD_PAGE_SIZE
    assert "Page 1 of 2" in first
    second = client_a.get(URL, {"page": 2}).content.decode()
    assert second.count('id="trade-') == 5
    assert f'id="trade-{trades[-1].id}"' in second
    # out-of-range and malformed pages fall back, never 404/500
    assert "Page 2 of 2" in client_a.get(URL, {"page": 999}).content.decode()
    assert "Page 1 of 2" in client_a.get(URL, {"page": "x1"}).content.decode()
    # the poll keeps the page it shows
    assert 'hx-get="/board/?page=2&amp;since=' in second


# --- the poll ----------------------------------------------------------------------------------
def test_poll_with_the_current_version_is_204_without_touching_trades(client_a, follower_a):
    for _ in range(3):
        CopyTradeFactory(follower=follower_a)
    token = _token(client_a.get(URL).content.decode())
    with CaptureQueriesContext(connection) as ctx:
        response = client_a.get(URL, {"page": 1, "since": token}, **HTMX)
    assert response.status_code == 204
    assert response.content == b""
    assert "HX-Request" in response["Vary"]
    sqls = [q["sql"] for q in ctx.captured_queries]
    assert not any('FROM "trading_copytrade"' in sql for sql in sqls), sqls
    assert len(sqls) <= 3, sqls  # session, user, board state


def test_poll_query_count_is_constant(client_a, follower_a):
    CopyTradeFactory(follower=follower_a)
    token = _token(client_a.get(URL).content.decode())
    with CaptureQueriesContext(connection) as small:
        client_a.get(URL, {"since": token}, **HTMX)
        client_a.get(URL, {"since": "stale"}, **HTMX)
    for _ in range(40):
        CopyTradeFactory(follower=follower_a)
    token = _token(client_a.get(URL).content.decode())
    with CaptureQueriesContext(connection) as large:
        client_a.get(URL, {"since": token}, **HTMX)
        client_a.get(URL, {"since": "stale"}, **HTMX)
    assert len(small.captured_queries) == len(large.captured_queries)


def test_plain_get_ignores_since(client_a, follower_a):
    token = _token(client_a.get(URL).content.decode())
    assert client_a.get(URL, {"since": token}).status_code == 200


@pytest.mark.parametrize(
    "change",
    ["new_trade", "status_change", "fill_update", "follower_paused", "kill_switch", "session"],
)
def test_poll_rerenders_after_any_change_the_board_shows(client_a, follower_a, change):
    trade = CopyTradeFactory(follower=follower_a)
    token = _token(client_a.get(URL).content.decode())
    assert client_a.get(URL, {"since": token}, **HTMX).status_code == 204
    if change == "new_trade":
        CopyTradeFactory(follower=follower_a)
    elif change == "status_change":
        CopyTrade.objects.filter(pk=trade.pk, status="PENDING").update(status="SENDING")
    elif change == "fill_update":
        CopyTrade.objects.filter(pk=trade.pk).update(filled_quantity=3)
    elif change == "follower_paused":
        follower_a.is_paused = True
        follower_a.save()
    elif change == "kill_switch":
        follower_a.master.entries_paused = True
        follower_a.master.save()
    elif change == "session":
        account = BrokerAccount.objects.get(owner=follower_a.user)
        BrokerSession.objects.create(
            account=account, state="ready", trading_day=selectors.trading_day()
        )
    response = client_a.get(URL, {"since": token}, **HTMX)
    assert response.status_code == 200
    assert _token(response.content.decode()) != token


def test_another_followers_change_keeps_my_poll_at_204(client_a, follower_a, follower_b):
    CopyTradeFactory(follower=follower_a)
    token = _token(client_a.get(URL).content.decode())
    CopyTradeFactory(follower=follower_b)
    assert client_a.get(URL, {"since": token}, **HTMX).status_code == 204


def test_poll_element_polls_every_5s_and_pauses_via_script_not_eval(client_a):
    html = client_a.get(URL).content.decode()
    section = re.search(r"<section id=\"board\"[^>]*>", html).group(0)
    assert 'hx-trigger="every 5s, poll-now"' in section
    assert 'hx-swap="outerHTML"' in section
    assert "data-poll" in section
    assert "[" not in section  # no hx-trigger filter expression (they need eval)


# --- session state -----------------------------------------------------------------------------
def test_session_needs_todays_login_by_default(client_a):
    html = client_a.get(URL).content.decode()
    assert 'data-session-state="needs_login"' in html
    assert "Needs today&#x27;s login" in html or "Needs today's login" in html


def test_yesterdays_session_needs_todays_login(client_a, follower_a):
    account = BrokerAccount.objects.get(owner=follower_a.user)
    BrokerSession.objects.create(
        account=account, state="ready", trading_day=selectors.trading_day() - timedelta(days=1)
    )
    assert 'data-session-state="needs_login"' in client_a.get(URL).content.decode()


def test_todays_session_is_ready(client_a, follower_a):
    account = BrokerAccount.objects.get(owner=follower_a.user)
    BrokerSession.objects.create(
        account=account, state="ready", trading_day=selectors.trading_day()
    )
    html = client_a.get(URL).content.decode()
    assert 'data-session-state="ready"' in html
    assert "Ready for today" in html


def test_oauth_account_needing_login_is_offered_the_connect_flow(client_a, follower_a):
    account = BrokerAccount.objects.get(owner=follower_a.user)
    account.login_method = "oauth"
    account.save()
    html = client_a.get(URL).content.decode()
    assert 'data-session-state="needs_login"' in html
    connect = reverse("trading:broker_connect", args=[account.pk])
    assert f'action="{connect}"' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_api_key_account_is_told_to_sign_in_not_given_a_button(client_a):
    html = client_a.get(URL).content.decode()
    assert "/connect/" not in html
    assert "connects with your API key" in html


def test_paused_follower_sees_it(client_a, follower_a):
    follower_a.is_paused = True
    follower_a.save()
    assert "Copying is paused" in client_a.get(URL).content.decode()


def test_every_value_in_a_row_is_escaped(client_a, follower_a):
    CopyTradeFactory(
        follower=follower_a,
        trading_symbol='<img src=x onerror="alert(1)">',
        reason="<script>alert('x')</script> & more",
        status="FAILED",
    )
    html = client_a.get(URL).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


def test_prices_show_average_fill_limit_or_market(client_a, follower_a):
    from decimal import Decimal

    CopyTradeFactory(follower=follower_a, price=Decimal("1500.5"), average_price=None)
    CopyTradeFactory(follower=follower_a, price=Decimal("99.05"), average_price=Decimal("99.1"))
    CopyTradeFactory(follower=follower_a, price=None, order_type="MARKET")
    html = client_a.get(URL).content.decode()
    assert 'data-label="Price">1,500.50</td>' in html
    assert '99.10 <span class="muted small">avg</span>' in html
    assert '<span class="muted">market</span>' in html
