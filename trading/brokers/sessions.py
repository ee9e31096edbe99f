"""Broker sessions: the daily API session of each AliceBlue account.

AliceBlue requires the account's owner to sign in to AliceBlue once per day before API
logins work, and API sessions end with the trading day. So every account's session is in
one of the `BrokerSession.State`s — READY (for today's IST trading day), NEEDS_LOGIN,
EXPIRED, ERROR — and a session from a previous IST day is never used.

Services (keyword-only, typed; network calls happen outside every transaction, the record
and its audit row are written together afterwards):

* `connect_api_key(account=...)` — ANT API login with the stored API key.
* `oauth_start(account=..., request=...)` → the AliceBlue login URL; binds the attempt to
  the browser session. `oauth_complete(request=..., auth_code=..., user_id=...)` — the
  callback: checks the binding and that AliceBlue signed in *this* account, exchanges the
  code, stores the session.
* `session_for(account=...)` → `AccountSession` for the clients, or NeedsDailyLogin /
  SessionExpired.
* `mark_expired(account=..., reason=...)`, `disconnect(account=...)`,
  `set_push_state(account_id=..., state=...)`.
* `may_connect(user, account)`: a master its own account and its followers' accounts; a
  follower its own account, through the AliceBlue login (OAuth) only.
"""

from __future__ import annotations

import importlib
import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts import crypto
from accounts.models import BrokerAccount, User
from copytrade.lib import clock
from copytrade.lib.secret import Secret
from trading.audit import record_audit
from trading.brokers.aliceblue import protocol
from trading.brokers.aliceblue.errors import (
    BrokerError,
    LoginRejected,
    NeedsDailyLogin,
    SessionExpired,
)
from trading.brokers.aliceblue.protocol import Endpoints
from trading.brokers.aliceblue.transport import SyncTransport
from trading.brokers.aliceblue.types import AccountSession, Generation, SessionGrant
from trading.models import BrokerSession

logger = logging.getLogger("trading.brokers.sessions")
IST = ZoneInfo("Asia/Kolkata")

OAUTH_SESSION_KEY = "broker_oauth"
OAUTH_MAX_AGE = timedelta(minutes=10)

# Error messages (tests assert these constants).
NO_API_KEY = "This account has no API key stored; enter it first."
NO_VENDOR_APP = (
    "No AliceBlue vendor app is configured: set ALICEBLUE_APP_CODE and ALICEBLUE_API_SECRET, "
    "or store the account's own app code and API secret."
)
WRONG_LOGIN_METHOD = "This account logs in with {method}."
OAUTH_NO_PENDING = "No AliceBlue sign-in was started from this browser (or it was used already)."
OAUTH_STALE = "The AliceBlue sign-in took too long; start it again."
OAUTH_WRONG_ACCOUNT = "You signed in to AliceBlue as {got}, but this account is {expected}."
OAUTH_MISSING_PARAMS = "AliceBlue did not send back an auth code and user id."
NOT_ALLOWED = "You may not connect this account."
PREVIOUS_DAY = "The session is from a previous trading day; today's login is needed."
NOT_CONNECTED = "Not connected today; today's login is needed."


class ConnectError(Exception):
    """A connect flow cannot proceed for a reason on our side (configuration, binding)."""


def trading_day(at: datetime | None = None) -> date:
    """The IST calendar day (AliceBlue sessions are daily)."""
    return (at or clock.now()).astimezone(IST).date()


def endpoints() -> Endpoints:
    return Endpoints.from_settings()


def generation_for(account: BrokerAccount) -> Generation:
    """API key → ANT API; AliceBlue login (OAuth) → Open API."""
    if account.login_method == BrokerAccount.LoginMethod.OAUTH:
        return Generation.OPEN_API
    return Generation.ANT


# --- who may connect what -------------------------------------------------------------------
def may_connect(user: User, account: BrokerAccount, *, oauth: bool = False) -> bool:
    if not user.is_authenticated:
        return False
    if user.role == User.Role.MASTER:
        master = getattr(user, "master", None)
        return master is not None and account.master_id == master.pk
    if user.role == User.Role.FOLLOWER:
        return oauth and account.owner_id == user.pk
    return False


# --- reading ---------------------------------------------------------------------------------
def session_for(*, account: BrokerAccount | int, at: datetime | None = None) -> AccountSession:
    """Today's ready session, or NeedsDailyLogin / SessionExpired. Never a previous day's."""
    account_id = account if isinstance(account, int) else account.pk
    record = BrokerSession.objects.select_related("account").filter(account_id=account_id).first()
    today = trading_day(at)
    if record is None or record.state == BrokerSession.State.NEEDS_LOGIN:
        raise NeedsDailyLogin(NOT_CONNECTED)
    if record.state == BrokerSession.State.EXPIRED:
        raise SessionExpired(record.last_error or "session expired; log in again")
    if record.state == BrokerSession.State.ERROR:
        raise NeedsDailyLogin(record.last_error or NOT_CONNECTED)
    if record.trading_day != today or not record.session_token_encrypted:
        BrokerSession.objects.filter(pk=record.pk, state=BrokerSession.State.READY).exclude(
            trading_day=today
        ).update(
            state=BrokerSession.State.NEEDS_LOGIN,
            session_token_encrypted="",
            last_error=PREVIOUS_DAY,
            updated_at=timezone.now(),
        )
        raise NeedsDailyLogin(PREVIOUS_DAY)
    token = crypto.open_sealed(record.session_token_encrypted)
    if token is None:
        raise NeedsDailyLogin(NOT_CONNECTED)
    return AccountSession(
        client_id=record.account.client_id.upper(),
        generation=Generation(record.generation),
        token=token,
        account_id=account_id,
        trading_day=record.trading_day,
        obtained_at=record.obtained_at,
    )


@dataclass(frozen=True)
class SessionView:
    """What a page shows about an account's session (no secrets)."""

    state: str
    label: str
    trading_day: date | None
    obtained_at: datetime | None
    last_error: str
    push_state: str
    generation: str


def session_view(account: BrokerAccount, *, at: datetime | None = None) -> SessionView:
    record = BrokerSession.objects.filter(account=account).first()
    if record is None:
        return SessionView(
            "needs_login",
            BrokerSession.State.NEEDS_LOGIN.label,
            None,
            None,
            "",
            BrokerSession.PushState.UNKNOWN,
            generation_for(account).value,
        )
    state = record.state
    if state == BrokerSession.State.READY and record.trading_day != trading_day(at):
        state = BrokerSession.State.NEEDS_LOGIN
    return SessionView(
        state=state,
        label=BrokerSession.State(state).label,
        trading_day=record.trading_day,
        obtained_at=record.obtained_at,
        last_error=record.last_error,
        push_state=record.push_state,
        generation=record.generation,
    )


# --- writing ---------------------------------------------------------------------------------
def _store_grant(
    *,
    account: BrokerAccount,
    grant: SessionGrant,
    method: str,
    actor: User | None,
    request: HttpRequest | None,
) -> BrokerSession:
    now = timezone.now()
    token, _hint = crypto.seal(grant.token.reveal())
    with transaction.atomic():
        record, _ = BrokerSession.objects.get_or_create(account=account)
        before = {"state": record.state, "trading_day": str(record.trading_day or "")}
        record.state = BrokerSession.State.READY
        record.generation = grant.generation.value
        record.session_token_encrypted = token
        record.trading_day = trading_day()
        record.obtained_at = now
        record.last_error = ""
        record.push_state = BrokerSession.PushState.UNKNOWN
        record.full_clean()
        record.save()
        record_audit(
            actor=actor,
            action="broker_session.connect",
            target=account,
            master=account.master,
            before=before,
            after={
                "state": record.state,
                "trading_day": str(record.trading_day),
                "method": method,
                "generation": grant.generation.value,
            },
            request=request,
        )
    return record


def _record_failure(
    *,
    account: BrokerAccount,
    state: str,
    error: str,
    actor: User | None,
    request: HttpRequest | None,
    method: str,
) -> None:
    with transaction.atomic():
        record, _ = BrokerSession.objects.get_or_create(account=account)
        before = {"state": record.state}
        record.state = state
        record.session_token_encrypted = ""
        record.last_error = error[:500]
        record.save()
        record_audit(
            actor=actor,
            action="broker_session.connect_failed",
            target=account,
            master=account.master,
            before=before,
            after={"state": state, "error": error[:200], "method": method},
            request=request,
        )


def connect_api_key(
    *,
    account: BrokerAccount,
    actor: User | None = None,
    request: HttpRequest | None = None,
    transport: SyncTransport | None = None,
) -> BrokerSession:
    """Log in with the stored API key (ANT API). NeedsDailyLogin carries AliceBlue's text."""
    if account.login_method != BrokerAccount.LoginMethod.API_KEY:
        raise ConnectError(WRONG_LOGIN_METHOD.format(method=account.get_login_method_display()))
    api_key = account.api_key()
    if not api_key:
        raise ConnectError(NO_API_KEY)
    own = transport is None
    transport = transport or SyncTransport()
    try:
        enc_key = transport.run(protocol.ant_enc_key_call(endpoints(), user_id=account.client_id))
        grant = transport.run(
            protocol.ant_session_call(
                endpoints(), user_id=account.client_id, api_key=api_key, enc_key=enc_key
            )
        )
    except NeedsDailyLogin as exc:
        _record_failure(
            account=account,
            state=BrokerSession.State.NEEDS_LOGIN,
            error=exc.message,
            actor=actor,
            request=request,
            method="api_key",
        )
        raise
    except BrokerError as exc:
        _record_failure(
            account=account,
            state=BrokerSession.State.ERROR,
            error=str(exc),
            actor=actor,
            request=request,
            method="api_key",
        )
        raise
    finally:
        if own:
            transport.close()
    return _store_grant(
        account=account, grant=grant, method="api_key", actor=actor, request=request
    )


@dataclass(frozen=True)
class VendorApp:
    app_code: Secret
    api_secret: Secret


def vendor_app(account: BrokerAccount) -> VendorApp:
    """The account's own vendor app if it has one, else the deployment's; in sandbox mode
    with nothing configured, the sandbox's own vendor app."""
    if account.uses_own_vendor_app:
        code, secret = account.app_code(), account.api_secret()
        if code and secret:
            return VendorApp(code, secret)
    if settings.ALICEBLUE_APP_CODE and settings.ALICEBLUE_API_SECRET:
        return VendorApp(Secret(settings.ALICEBLUE_APP_CODE), Secret(settings.ALICEBLUE_API_SECRET))
    if settings.ALICEBLUE_BROKER == "sandbox":
        found = _sandbox_vendor_app()
        if found is not None:
            return found
    raise ConnectError(NO_VENDOR_APP)


def _sandbox_vendor_app() -> VendorApp | None:
    """The sandbox's vendor app from its state file (created there on first use)."""
    try:
        store = importlib.import_module("sandbox.store")
    except ImportError:
        return None
    app: Any = store.vendor_app(settings.SANDBOX_STATE_PATH)
    if not app or not app.app_code or not app.api_secret:
        return None
    return VendorApp(Secret(str(app.app_code)), Secret(str(app.api_secret)))


def oauth_start(*, account: BrokerAccount, request: HttpRequest, actor: User | None = None) -> str:
    """Bind a sign-in attempt to this browser session; return AliceBlue's login URL."""
    if account.login_method != BrokerAccount.LoginMethod.OAUTH:
        raise ConnectError(WRONG_LOGIN_METHOD.format(method=account.get_login_method_display()))
    app = vendor_app(account)
    request.session[OAUTH_SESSION_KEY] = {
        "account_id": account.pk,
        "user_id": request.user.pk,
        "nonce": secrets.token_urlsafe(16),
        "started": timezone.now().isoformat(),
    }
    return protocol.oauth_login_url(settings.ALICEBLUE_LOGIN_URL, app.app_code.reveal())


def oauth_complete(
    *,
    request: HttpRequest,
    auth_code: str,
    user_id: str,
    transport: SyncTransport | None = None,
) -> BrokerSession:
    """The OAuth callback: check the binding, exchange the code, store the session."""
    pending = request.session.pop(OAUTH_SESSION_KEY, None)
    if not isinstance(pending, dict) or pending.get("user_id") != request.user.pk:
        raise ConnectError(OAUTH_NO_PENDING)
    started = datetime.fromisoformat(str(pending.get("started")))
    if timezone.now() - started > OAUTH_MAX_AGE:
        raise ConnectError(OAUTH_STALE)
    if not auth_code or not user_id:
        raise ConnectError(OAUTH_MISSING_PARAMS)
    account = BrokerAccount.objects.select_related("master").get(pk=pending["account_id"])
    actor = request.user if isinstance(request.user, User) else None
    if actor is None or not may_connect(actor, account, oauth=True):
        raise ConnectError(NOT_ALLOWED)
    if user_id.strip().upper() != account.client_id.strip().upper():
        raise ConnectError(
            OAUTH_WRONG_ACCOUNT.format(got=user_id.strip().upper(), expected=account.client_id)
        )
    app = vendor_app(account)
    own = transport is None
    transport = transport or SyncTransport()
    try:
        grant = transport.run(
            protocol.open_api_session_call(
                endpoints(), user_id=user_id.strip(), auth_code=auth_code, api_secret=app.api_secret
            )
        )
    except NeedsDailyLogin as exc:
        _record_failure(
            account=account,
            state=BrokerSession.State.NEEDS_LOGIN,
            error=exc.message,
            actor=actor,
            request=request,
            method="oauth",
        )
        raise
    except BrokerError as exc:
        _record_failure(
            account=account,
            state=BrokerSession.State.ERROR,
            error=str(exc),
            actor=actor,
            request=request,
            method="oauth",
        )
        raise
    finally:
        if own:
            transport.close()
    if grant.client_id.upper() != account.client_id.upper():
        raise LoginRejected(
            "WRONG_ACCOUNT",
            OAUTH_WRONG_ACCOUNT.format(got=grant.client_id, expected=account.client_id),
            op="get_user_details",
        )
    return _store_grant(account=account, grant=grant, method="oauth", actor=actor, request=request)


def mark_expired_by_id(
    *, account_id: int, reason: str, obtained_at: datetime | None = None
) -> bool:
    """READY → EXPIRED (conditional update; the token is dropped). True if it changed.

    With `obtained_at` (from the AccountSession that failed) only that session is expired:
    a session obtained since (a reconnect) stays READY.
    """
    rows = BrokerSession.objects.filter(account_id=account_id, state=BrokerSession.State.READY)
    if obtained_at is not None:
        rows = rows.filter(obtained_at=obtained_at)
    changed = rows.update(
        state=BrokerSession.State.EXPIRED,
        session_token_encrypted="",
        last_error=reason[:500],
        updated_at=timezone.now(),
    )
    if changed:
        logger.warning("broker session expired", extra={"ctx": {"account_id": account_id}})
    return bool(changed)


def mark_expired(
    *, account: BrokerAccount, reason: str, obtained_at: datetime | None = None
) -> bool:
    return mark_expired_by_id(account_id=account.pk, reason=reason, obtained_at=obtained_at)


def disconnect(
    *, account: BrokerAccount, actor: User | None = None, request: HttpRequest | None = None
) -> None:
    with transaction.atomic():
        record, _ = BrokerSession.objects.get_or_create(account=account)
        before = {"state": record.state, "trading_day": str(record.trading_day or "")}
        record.state = BrokerSession.State.NEEDS_LOGIN
        record.session_token_encrypted = ""
        record.last_error = ""
        record.save()
        record_audit(
            actor=actor,
            action="broker_session.disconnect",
            target=account,
            master=account.master,
            before=before,
            after={"state": record.state},
            request=request,
        )


def end_previous_days(*, at: datetime | None = None) -> int:
    """End every READY session from a previous IST day (the copier's end-of-day step; the
    daily rule holds without it, since `session_for` never returns such a session)."""
    return (
        BrokerSession.objects.filter(state=BrokerSession.State.READY)
        .exclude(trading_day=trading_day(at))
        .update(
            state=BrokerSession.State.NEEDS_LOGIN,
            session_token_encrypted="",
            last_error=PREVIOUS_DAY,
            updated_at=timezone.now(),
        )
    )


def set_push_state(*, account_id: int, state: str) -> None:
    """The copier reports whether the account has order-update push (ENABLED/NOT_ENABLED)."""
    BrokerSession.objects.filter(account_id=account_id).exclude(push_state=state).update(
        push_state=BrokerSession.PushState(state), updated_at=timezone.now()
    )
