"""Dashboards: the follower's live board and the master's dashboard.

Pages render whole on a plain GET and as named partials for HTMX (`page.html#partial`, with
`Vary: HX-Request`). The board's poll sends the version it shows and gets 204 while that is
current: one indexed query (trading.fastauth + trading.selectors.board_state_with_login).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.template.backends.utils import csrf_input
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.middleware import HtmxDetails

from accounts import services as account_services
from accounts.decorators import follower_required, master_required
from accounts.models import Follower, Master, User
from trading import board_html, fastauth, selectors


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


BOARD_PAGE_SIZE = 25
BOARD_POLL_SECONDS = 5


def _page_number(request: HttpRequest) -> int:
    raw = request.GET.get("page", "1")
    return int(raw) if raw.isdigit() and len(raw) < 9 else 1


def _private(response: HttpResponse) -> HttpResponse:
    """Boards hold private, changing data: never cache them anywhere; the same URL answers a
    page or a partial by the HX-Request header."""
    patch_cache_control(response, private=True, no_store=True)
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


# --- The master dashboard -----------------------------------------------------------------------
MASTER_TEMPLATE = "trading/master_dashboard.html"
RECENT_ORDERS = 10
KILL_ON = "New entries are paused for every follower. Exits still go out."
KILL_OFF = "New entries are copied again."
PAUSED = "{name}: new entries are paused."
RESUMED = "{name}: new entries are copied again."
SANDBOX_ONLY = "Sandbox accounts exist only while the product runs against the sandbox broker."


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _master(request: HttpRequest) -> Master:
    return _user(request).master


def _master_context(request: HttpRequest, master: Master) -> dict[str, Any]:
    account, session = selectors.master_account_session(master)
    lines = selectors.follower_lines(master)
    active = [line for line in lines if line.follower.is_active]
    return {
        "master": master,
        "account": account,
        "session": session,
        "lines": lines,
        "needing_login": [line for line in active if not line.session.ready],
        "loss_reached": [line for line in active if line.loss_reached],
        "orders": selectors.recent_master_orders(master, limit=RECENT_ORDERS),
        "copier": selectors.copier_status(),
        "feed": selectors.master_feed(master),
        "readiness": selectors.latest_readiness(master),
        "readiness_waiting": selectors.readiness_request_waiting(master),
        "proposal_groups": selectors.exit_proposal_groups(master),
        "drifts": selectors.open_drifts(master),
        "reconcile_policies": Master.ReconcilePolicy.choices,
        "sandbox_mode": settings.ALICEBLUE_BROKER == "sandbox",
        "poll_seconds": BOARD_POLL_SECONDS,
        "manual_url": manual_copy_url(),
    }


def manual_copy_url() -> str | None:
    """The copy engine's manual copy page (the dialog's fallback without JavaScript)."""
    try:
        return reverse("trading:manual_copy")
    except NoReverseMatch:
        return None


# The live part is rendered with markers for its own version and its CSRF inputs (a masked
# token differs on every render), hashed, then the markers are filled in: equal hash, equal
# page, so the poll answers 204 and nothing on screen moves (open rows, focus, scroll).
_VERSION_MARK = "@@live-version@@"
_CSRF_MARK = "@@csrf-input@@"


def _live(request: HttpRequest, context: dict[str, Any]) -> tuple[str, str]:
    html = render_to_string(
        MASTER_TEMPLATE + "#live",
        {**context, "version": _VERSION_MARK, "csrf_field": _CSRF_MARK},
        request=request,
    )
    version = hashlib.blake2b(html.encode(), digest_size=8).hexdigest()
    return html.replace(_VERSION_MARK, version).replace(_CSRF_MARK, csrf_input(request)), version


def _master_page(request: HtmxHttpRequest, master: Master) -> HttpResponse:
    context = _master_context(request, master)
    html, version = _live(request, context)
    if request.htmx and request.GET.get("since") == version:
        return _private(HttpResponse(status=204))
    if request.htmx and not request.htmx.boosted:
        return _private(HttpResponse(html))
    page = render(
        request,
        MASTER_TEMPLATE,
        {**context, "version": version, "csrf_field": mark_safe(csrf_input(request))},  # noqa: S308
    )
    return _private(page)


@require_GET
@master_required
def master_dashboard(request: HtmxHttpRequest) -> HttpResponse:
    """The master's dashboard; its live part (banners, followers, recent orders) is polled."""
    return _master_page(request, _master(request))


def _after_action(request: HtmxHttpRequest, master: Master, message: str) -> HttpResponse:
    if request.htmx:
        return _master_page(request, master)
    messages.success(request, message)
    return redirect("trading:master_dashboard")


@require_POST
@master_required
def master_follower_pause(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    master = _master(request)
    follower = get_object_or_404(Follower, pk=pk, master=master)
    return _follower_switch(request, master, follower, pause=True)


@require_POST
@master_required
def master_follower_resume(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    master = _master(request)
    follower = get_object_or_404(Follower, pk=pk, master=master)
    return _follower_switch(request, master, follower, pause=False)


def _follower_switch(
    request: HtmxHttpRequest, master: Master, follower: Follower, *, pause: bool
) -> HttpResponse:
    service = account_services.pause_follower if pause else account_services.resume_follower
    user = _user(request)
    try:
        service(follower=follower, actor=user, request=request)
    except ValidationError as exc:
        if request.htmx:
            return _master_page(request, master)
        messages.error(request, " ".join(exc.messages))
        return redirect("trading:master_dashboard")
    template = PAUSED if pause else RESUMED
    return _after_action(request, master, template.format(name=follower.display_name))


@require_POST
@master_required
def master_kill_switch(request: HtmxHttpRequest) -> HttpResponse:
    master = _master(request)
    action = request.POST.get("entries")
    if action not in ("pause", "resume"):
        return HttpResponseBadRequest("entries must be pause or resume")
    user = _user(request)
    account_services.set_entries_paused(
        master=master, paused=action == "pause", actor=user, request=request
    )
    return _after_action(request, master, KILL_ON if action == "pause" else KILL_OFF)


MANUAL_FORM = "trading/_manual_copy_form.html"
MANUAL_RECORDED = (
    "Recorded: {side} {quantity} {symbol}. The copier is deciding each follower's copy; "
    "it appears under Recent master orders."
)


@require_http_methods(["GET", "POST"])
@master_required
def master_manual_copy(request: HtmxHttpRequest) -> HttpResponse:
    """The manual copy trade dialog's form (the engine's form and service, trading.services
    .create_manual_copy). Without JavaScript the dashboard links to the engine's own page."""
    from trading.views_manual import ManualCopyForm, submit

    master = _master(request)
    if request.method == "GET":
        return render(request, MANUAL_FORM, {"form": ManualCopyForm()})
    form = ManualCopyForm(request.POST)
    user = _user(request)
    order = submit(request, master, user, form) if form.is_valid() else None
    if order is not None:
        done = MANUAL_RECORDED.format(
            side=order.side, quantity=order.quantity, symbol=order.trading_symbol
        )
        return render(request, MANUAL_FORM, {"form": ManualCopyForm(), "done": done})
    # 422: htmx swaps it (base.html's responseHandling); the errors sit next to the fields
    return render(request, MANUAL_FORM, {"form": form}, status=422)


@require_POST
@master_required
def master_sandbox_account(request: HtmxHttpRequest) -> HttpResponse:
    """Sandbox mode: open a fresh paper account for a new follower (signed in for today) and
    show its credentials, with buttons that fill the registration form."""
    if settings.ALICEBLUE_BROKER != "sandbox":
        raise Http404(SANDBOX_ONLY)
    from sandbox.clock import Clock
    from sandbox.store import Store

    store = Store(settings.SANDBOX_STATE_PATH)
    try:
        account = store.create_account()
        store.record_daily_login(account.client_id, Clock().today(), "copytrade")
    finally:
        store.close()
    response = render(
        request,
        "trading/_sandbox_account.html",
        {"sandbox": account, "sandbox_url": settings.SANDBOX_URL},
    )
    response["Cache-Control"] = "no-store"
    return response


def _fast_board_state(request: HttpRequest) -> selectors.BoardState | None:
    """The board state of the follower this request's session authenticates, found with raw
    reads (trading.fastauth): one query when this worker has seen the session before, two
    otherwise. None: the full, decorated path decides (login redirect, 403, session cycling)."""
    key = fastauth.session_key(request)
    if key is None:
        return None
    known = fastauth.remembered(key)
    if known is not None:
        data, login = known
        loaded = selectors.board_state_with_login(login.user_id, session_key=key)
        if loaded is None or loaded[0].session_data != data:
            fastauth.forget(key)  # logged out, expired, changed, or not a follower
            return None
    else:
        fresh = fastauth.session_login(request)
        if fresh is None:
            return None
        login = fresh
        loaded = selectors.board_state_with_login(login.user_id)
        if loaded is None:
            return None
    user, state = loaded
    if user.role != User.Role.FOLLOWER or not fastauth.verifies(
        login, password_hash=user.password, is_active=user.is_active
    ):
        return None
    return state


_UNCHANGED_HEADERS = {
    "Cache-Control": "private, no-store",
    # The answer depends on the session cookie even when the session was read directly.
    "Vary": "HX-Request, Cookie",
}


def _is_htmx(request: HttpRequest) -> bool:
    return request.META.get("HTTP_HX_REQUEST") == "true"


def _board_response(request: HtmxHttpRequest, state: selectors.BoardState) -> HttpResponse:
    if _is_htmx(request) and request.GET.get("since") == state.token:
        return HttpResponse(status=204, headers=_UNCHANGED_HEADERS)
    rows, page, pages = selectors.board_page(
        state.follower_id,
        page=_page_number(request),
        per_page=BOARD_PAGE_SIZE,
        total=state.rows,
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
    if _is_htmx(request):
        template += "#board"
    response = render(request, template, context)
    patch_vary_headers(response, ["Cookie"])
    return _private(response)


@require_GET
def follower_board(request: HtmxHttpRequest) -> HttpResponse:
    """The follower's live board. Its 5 s poll (HTMX, `since=<version shown>`) is the hot
    path: a session check and one board read, then 204 when nothing changed."""
    if _is_htmx(request):
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
