"""Dashboards: the follower's live board and the master's dashboard.

Pages render whole on a plain GET and as named partials for HTMX (`page.html#partial`, with
`Vary: HX-Request`). The board's poll sends the version it shows and gets 204 while that is
current: the check reads one row per follower (see `trading.selectors.board_state`).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.views.decorators.http import require_GET
from django_htmx.middleware import HtmxDetails

from accounts.decorators import follower_required, master_required
from accounts.models import User
from trading import board_html, fastauth, selectors


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


BOARD_PAGE_SIZE = 25
BOARD_POLL_SECONDS = 5


def _page_number(request: HttpRequest) -> int:
    raw = request.GET.get("page", "1")
    return int(raw) if raw.isdigit() and len(raw) < 9 else 1


def _private(response: HttpResponse, *, htmx_aware: bool = True) -> HttpResponse:
    """Boards hold private, changing data: never cache them anywhere."""
    patch_cache_control(response, private=True, no_store=True)
    if htmx_aware:
        patch_vary_headers(response, ["HX-Request"])
    return response


def broker_connect_url(account_id: int | None) -> str | None:
    """The broker client's Connect view for an account (its AliceBlue sign-in flow)."""
    if account_id is None:
        return None
    try:
        return reverse("trading:broker_connect", args=[account_id])
    except NoReverseMatch:  # the broker client is not installed
        return None


@require_GET
@master_required
def master_dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "trading/master_dashboard.html", {})


def _fast_board_state(request: HttpRequest) -> selectors.BoardState | None:
    """The board state of the follower this request's session authenticates, found with two
    raw reads (trading.fastauth), or None: then the full, decorated path decides."""
    login = fastauth.session_login(request)
    if login is None:
        return None
    loaded = selectors.board_state_with_login(login.user_id)
    if loaded is None:
        return None
    user, state = loaded
    if user.role != User.Role.FOLLOWER or not fastauth.verifies(
        login, password_hash=user.password, is_active=user.is_active
    ):
        return None
    return state


def _board_response(request: HtmxHttpRequest, state: selectors.BoardState) -> HttpResponse:
    if request.htmx and request.GET.get("since") == state.token:
        response = HttpResponse(status=204)
    else:
        rows, page, pages = selectors.board_page(
            state.follower_id,
            page=_page_number(request),
            per_page=BOARD_PAGE_SIZE,
            total=state.overall.total,
        )
        context = {
            "state": state,
            "trades": rows,
            "rows_html": board_html.render_rows(rows),
            "page": page,
            "pages": pages,
            "today": selectors.today_stats_for_follower(state.follower_id),
            "overall": state.overall,
            "connect_url": (
                broker_connect_url(state.session.account_id)
                if state.session.login_method == "oauth"
                else None
            ),
            "connect_next": reverse("trading:follower_board"),
            "poll_seconds": BOARD_POLL_SECONDS,
        }
        template = "trading/follower_board.html"
        if request.htmx:
            template += "#board"
        response = render(request, template, context)
    # The answer depends on the session cookie even when the session was read directly.
    patch_vary_headers(response, ["Cookie"])
    return _private(response)


@require_GET
def follower_board(request: HtmxHttpRequest) -> HttpResponse:
    """The follower's live board. Its 5 s poll (HTMX, `since=<version shown>`) is the hot
    path: a session check and one board read, then 204 when nothing changed."""
    if request.htmx:
        state = _fast_board_state(request)
        if state is not None:
            return _board_response(request, state)
    return _follower_board_page(request)


@follower_required
def _follower_board_page(request: HtmxHttpRequest) -> HttpResponse:
    state = selectors.board_state(request.user.pk or 0)
    if state is None:
        raise PermissionDenied("no follower profile for this login")
    return _board_response(request, state)
