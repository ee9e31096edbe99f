"""Broker connect views: an account's session panel, Connect (API key or AliceBlue sign-in),
Disconnect, and the OAuth callback AliceBlue redirects to (settings.ALICEBLUE_REDIRECT_URL).

Who may act: a master (second factor passed) on its own account and its followers'
accounts; a follower on its own account through the AliceBlue sign-in only. Anyone else gets
404, so account ids are not probeable. The network calls happen in the services
(`trading.brokers.sessions`), outside any transaction.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.models import BrokerAccount, User
from trading.brokers import sessions
from trading.brokers.aliceblue.errors import BrokerError, NeedsDailyLogin

PANEL = "trading/broker/session.html"
CONNECTED = "Connected to AliceBlue for today."
DISCONNECTED = "Disconnected from AliceBlue."
NEEDS_SIGN_IN = "Sign in to AliceBlue first today, then connect again. AliceBlue says: {text}"


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _second_factor_ok(user: User) -> bool:
    if user.role != User.Role.MASTER:
        return True
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified and is_verified())


def _account_for(request: HttpRequest, account_id: int, *, connect: bool = False) -> BrokerAccount:
    """The account if this user may see it (and, with connect=True, connect it); else 404."""
    user = _user(request)
    account = BrokerAccount.objects.select_related("master", "owner").filter(pk=account_id).first()
    if account is None or not _second_factor_ok(user):
        raise Http404("no such account")
    oauth = account.login_method == BrokerAccount.LoginMethod.OAUTH
    visible = sessions.may_connect(user, account, oauth=True) or account.owner_id == user.pk
    if not visible or (connect and not sessions.may_connect(user, account, oauth=oauth)):
        raise Http404("no such account")
    return account


def _panel(
    request: HttpRequest, account: BrokerAccount, *, error: str = "", status: int = 200
) -> HttpResponse:
    user = _user(request)
    oauth = account.login_method == BrokerAccount.LoginMethod.OAUTH
    context = {
        "account": account,
        "session": sessions.session_view(account),
        "can_connect": sessions.may_connect(user, account, oauth=oauth),
        "error": error,
        "next": _next_url(request),
    }
    template = f"{PANEL}#session-state" if request.headers.get("HX-Request") else PANEL
    response = render(request, template, context, status=status)
    response["Vary"] = "HX-Request"
    return response


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


def _back(request: HttpRequest, account: BrokerAccount) -> HttpResponseRedirect:
    return redirect(_next_url(request) or reverse("trading:broker_session", args=[account.pk]))


@require_GET
@login_required
def broker_session(request: HttpRequest, account_id: int) -> HttpResponse:
    return _panel(request, _account_for(request, account_id))


@require_POST
@login_required
def broker_connect(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _account_for(request, account_id, connect=True)
    user = _user(request)
    if account.login_method == BrokerAccount.LoginMethod.OAUTH:
        try:
            url = sessions.oauth_start(account=account, request=request, actor=user)
        except sessions.ConnectError as exc:
            return _panel(request, account, error=str(exc), status=400)
        if request.headers.get("HX-Request"):
            response = HttpResponse(status=204)
            response["HX-Redirect"] = url
            return response
        return HttpResponseRedirect(url)
    try:
        sessions.connect_api_key(account=account, actor=user, request=request)
    except sessions.ConnectError as exc:
        return _panel(request, account, error=str(exc), status=400)
    except NeedsDailyLogin as exc:
        return _panel(request, account, error=NEEDS_SIGN_IN.format(text=exc.message), status=409)
    except BrokerError as exc:
        return _panel(request, account, error=f"AliceBlue refused: {exc}", status=502)
    if request.headers.get("HX-Request"):
        return _panel(request, account)
    messages.success(request, CONNECTED)
    return _back(request, account)


@require_POST
@login_required
def broker_disconnect(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _account_for(request, account_id, connect=True)
    sessions.disconnect(account=account, actor=_user(request), request=request)
    if request.headers.get("HX-Request"):
        return _panel(request, account)
    messages.success(request, DISCONNECTED)
    return _back(request, account)


@require_GET
@login_required
def broker_callback(request: HttpRequest) -> HttpResponse:
    """AliceBlue sends the browser here with `authCode` and `userId` after the sign-in."""
    pending = request.session.get(sessions.OAUTH_SESSION_KEY) or {}
    try:
        record = sessions.oauth_complete(
            request=request,
            auth_code=request.GET.get("authCode", "").strip(),
            user_id=request.GET.get("userId", "").strip(),
        )
    except (sessions.ConnectError, BrokerError) as exc:
        account_id = pending.get("account_id") if isinstance(pending, dict) else None
        return render(
            request,
            "trading/broker/callback_error.html",
            {"error": str(exc), "account_id": account_id},
            status=400,
        )
    messages.success(request, CONNECTED)
    return redirect(reverse("trading:broker_session", args=[record.account_id]))
