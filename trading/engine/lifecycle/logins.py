"""Sessions through the day (issue 5, item 4): what happens when an API session ends mid-day.

AliceBlue ends API sessions by itself (EC087 "Session Expired", or HTTP 401). When any call
of the copier gets that answer — a master's order book or push, a follower's send, poll or
push — `Copier.session_lost` runs:

1. `session_lost` (here): exactly the session that failed becomes EXPIRED (a session obtained
   since stays READY). An AliceBlue-login (OAuth) account, or an API-key account without a
   key, cannot be logged in by the copier: it becomes NEEDS_LOGIN at once ("needs today's
   login") and the master gets one NEEDS_LOGIN alert.
2. An API-key account is logged in again at once with its stored key. That works once its
   owner has signed in to AliceBlue today (the daily rule); if AliceBlue says the owner has
   not, `login_refused` makes it NEEDS_LOGIN with AliceBlue's words and alerts the master once;
   the copier keeps trying with its back-off, so a later sign-in reconnects it by itself.
3. Meanwhile the account's entries are SKIPPED ``needs_login`` and its exits wait (PENDING
   ``needs_login``) until it reconnects (`sender.classify`, `decide`).

Alerts are per account and incident: one open (unresolved) NEEDS_LOGIN alert per master and
account per day, never one per copy. The periodic job `needs_login_alerts` resolves them
when the account has a ready session again, and raises one for an account whose copies were
skipped or held for want of a login (an account that was never connected today).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from accounts.models import BrokerAccount, Follower, Master
from copytrade.lib import clock
from trading.brokers import sessions
from trading.engine import alerts, jobs
from trading.engine.reasons import Reason
from trading.models import Alert, AlertKind, BrokerSession, CopyTrade

if TYPE_CHECKING:
    from trading.engine.runner import Copier

logger = logging.getLogger("trading.engine.lifecycle.logins")

State = BrokerSession.State

SESSION_ENDED = "AliceBlue ended the session at {time} IST ({detail}); today's login is needed."
OWNER_NOT_SIGNED_IN = (
    "The session ended at {time} IST and the copier could not log in again: {detail}. "
    "The account's owner must sign in to AliceBlue today (then it reconnects by itself)."
)
ALERT_MASTER = "Your own AliceBlue account ({client_id}) needs today's login: {why}"
ALERT_FOLLOWER = (
    "{name}'s AliceBlue account ({client_id}) needs today's login: {why} Entries are skipped "
    "and exits wait until it reconnects."
)
COPIES_HELD = "copies were skipped or held for want of a session."


@dataclass(frozen=True)
class Owner:
    """Whose account it is: the master it belongs to and the follower (None: the master's)."""

    account_id: int
    client_id: str
    master_id: int
    follower_id: int | None
    follower_name: str
    login_method: str
    has_api_key: bool

    @property
    def auto_login(self) -> bool:
        return self.login_method == BrokerAccount.LoginMethod.API_KEY and self.has_api_key


def owner_of(account_id: int) -> Owner | None:
    row = (
        BrokerAccount.objects.filter(pk=account_id)
        .values_list("client_id", "master_id", "owner_id", "login_method", "api_key_encrypted")
        .first()
    )
    if row is None:
        return None
    client_id, master_id, owner_id, method, key = row
    follower = Follower.objects.filter(user_id=owner_id).values_list("pk", "display_name").first()
    own = Master.objects.filter(user_id=owner_id).values_list("pk", flat=True).first()
    if own is not None:
        master_id, follower = own, None
    return Owner(
        account_id=account_id,
        client_id=client_id,
        master_id=master_id,
        follower_id=follower[0] if follower else None,
        follower_name=follower[1] if follower else "",
        login_method=method,
        has_api_key=bool(key),
    )


def _hhmm(at: datetime) -> str:
    return at.astimezone(clock.IST).strftime("%H:%M")


def _day_start(at: datetime) -> datetime:
    return datetime.combine(at.astimezone(clock.IST).date(), time(0, 0), tzinfo=clock.IST)


def session_lost(account_id: int, detail: str, obtained_at: datetime | None, at: datetime) -> bool:
    """The broker answered EC087/401 for this account's session (the one obtained at
    ``obtained_at``, if given). Expire it; return True when the copier should log in again
    with the API key now, False when a person must (the account then needs today's login and
    the master is alerted)."""
    sessions.mark_expired_by_id(
        account_id=account_id, reason=detail or "session expired", obtained_at=obtained_at
    )
    owner = owner_of(account_id)
    if owner is None:
        return False
    if owner.auto_login:
        return True
    needs_login(owner, SESSION_ENDED.format(time=_hhmm(at), detail=detail[:200]), at)
    return False


def login_refused(account_id: int, detail: str, at: datetime) -> bool:
    """The copier's API-key login was refused for want of the owner's daily sign-in. A
    session that ended today (EXPIRED) becomes NEEDS_LOGIN with AliceBlue's words and the
    master is told once. True if it changed."""
    owner = owner_of(account_id)
    if owner is None:
        return False
    text = OWNER_NOT_SIGNED_IN.format(time=_hhmm(at), detail=detail[:200].rstrip("."))
    changed = BrokerSession.objects.filter(account_id=account_id, state=State.EXPIRED).update(
        state=State.NEEDS_LOGIN, last_error=text[:500], updated_at=timezone.now()
    )
    if changed:
        raise_once(owner, text, at)
    return bool(changed)


def needs_login(owner: Owner, text: str, at: datetime) -> None:
    """The account needs a person's login: NEEDS_LOGIN with ``text``, one alert."""
    BrokerSession.objects.filter(
        account_id=owner.account_id, state__in=(State.EXPIRED, State.READY)
    ).update(
        state=State.NEEDS_LOGIN,
        session_token_encrypted="",
        last_error=text[:500],
        updated_at=timezone.now(),
    )
    raise_once(owner, text, at)


def raise_once(owner: Owner, why: str, at: datetime) -> Alert | None:
    """One open NEEDS_LOGIN alert per master and account per day (never one per copy)."""
    with transaction.atomic():
        open_alert = Alert.objects.filter(
            kind=AlertKind.NEEDS_LOGIN,
            master_id=owner.master_id,
            resolved_at__isnull=True,
            created_at__gte=_day_start(at),
        )
        if owner.follower_id is not None:
            open_alert = open_alert.filter(follower_id=owner.follower_id)
        else:
            # the master's own account: its alert names the account (a follower's has the FK)
            open_alert = open_alert.filter(
                follower__isnull=True, message__contains=f"({owner.client_id})"
            )
        if open_alert.exists():
            return None
        if owner.follower_id is None:
            text = ALERT_MASTER.format(client_id=owner.client_id, why=why)
        else:
            text = ALERT_FOLLOWER.format(
                name=owner.follower_name, client_id=owner.client_id, why=why
            )
        return alerts.raise_alert(
            kind=AlertKind.NEEDS_LOGIN,
            master_id=owner.master_id,
            follower_id=owner.follower_id,
            message=text,
            at=at,
        )


def sweep_alerts(at: datetime) -> tuple[int, int]:
    """Resolve NEEDS_LOGIN alerts whose account is ready again; raise one for each account
    whose copies were skipped or held today for want of a login and that has none open.
    Returns (raised, resolved)."""
    today = at.astimezone(clock.IST).date()
    ready_accounts = set(
        BrokerSession.objects.filter(state=State.READY, trading_day=today).values_list(
            "account_id", flat=True
        )
    )
    resolved = 0
    for alert_id, master_id, follower_id, text in Alert.objects.filter(
        kind=AlertKind.NEEDS_LOGIN, resolved_at__isnull=True
    ).values_list("pk", "master_id", "follower_id", "message"):
        account_id = _alert_account(master_id, follower_id, text)
        if account_id is not None and account_id in ready_accounts:
            resolved += Alert.objects.filter(pk=alert_id, resolved_at__isnull=True).update(
                resolved_at=at
            )
    raised = 0
    # followers whose account has no ready session (few), then their copies of today through
    # the (follower, -decided_at) index: skipped or held for want of a login
    not_ready = dict(
        BrokerAccount.objects.filter(owner__follower__is_active=True)
        .exclude(pk__in=ready_accounts)
        .values_list("owner__follower__pk", "pk")
    )
    held = (
        CopyTrade.objects.filter(
            follower_id__in=list(not_ready),
            decided_at__gte=_day_start(at),
            reason_code=Reason.NEEDS_LOGIN,
            status__in=(CopyTrade.Status.SKIPPED, CopyTrade.Status.PENDING),
        )
        .values_list("follower_id", flat=True)
        .distinct()
    )
    for follower_id in list(held):
        owner = owner_of(not_ready[follower_id])
        if owner is not None and raise_once(owner, COPIES_HELD, at) is not None:
            raised += 1
    return raised, resolved


def release_waiting(account_ids: list[int], at: datetime) -> int:
    """These accounts have a session again: their exits that waited for a login are due
    now (not at their next quiet re-check)."""
    followers = list(
        Follower.objects.filter(user__broker_account__pk__in=account_ids).values_list(
            "pk", flat=True
        )
    )
    if not followers:
        return 0
    return CopyTrade.objects.filter(
        follower_id__in=followers,
        status=CopyTrade.Status.PENDING,
        reason_code=Reason.NEEDS_LOGIN,
        next_attempt_at__gt=at,
    ).update(next_attempt_at=at)


def _alert_account(master_id: int, follower_id: int | None, text: str) -> int | None:
    if follower_id is not None:
        return (
            BrokerAccount.objects.filter(owner__follower__pk=follower_id)
            .values_list("pk", flat=True)
            .first()
        )
    account = (
        BrokerAccount.objects.filter(owner__master__pk=master_id)
        .values_list("pk", "client_id")
        .first()
    )
    if account is None or f"({account[1]})" not in text:
        return None
    return int(account[0])


@jobs.periodic("needs_login_alerts", every=5.0)
async def needs_login_alerts(copier: Copier) -> None:
    """Raise and resolve the NEEDS_LOGIN alerts (database only)."""
    await copier.db(sweep_alerts, clock.now())
