"""The end of the trading day (issue 5, item 4; DESIGN.md "Staleness"): unsent rows expire and
sessions are logged out, as AliceBlue and the exchanges require.

A periodic copier job (`end_of_day`, every ``CHECK_SECONDS``, and once per
`Copier.tick`), by the product's clock (`copytrade.lib.clock`) and the exchange calendar
(`copytrade.lib.calendar`, IST):

* **Unsent rows expire** (`expire_unsent`). A PENDING copy — a waiting exit (no session, market
  closed), a retry, an entry nobody sent — belongs to the IST day it was decided on. Once its
  exchange's last session of that day has ended (or, decided after the close or on a day the
  exchange does not trade, once that IST day is over) it becomes EXPIRED ``end_of_day`` with
  what it was waiting for, its transition recorded. It is never sent on a later day. An exit
  that expires leaves the follower holding a position the master no longer has: the master
  gets an EXIT_DELAYED alert for each.
* **Sessions are logged out** (`log_out_sessions`) once every exchange has closed for the day
  (`calendar.day_end`: MCX's close on most days), and every session of a previous day at any
  time. The protocol has no logout call for API sessions (PROTOCOL.md lists none for either
  generation; sessions simply end with the day), so logging out is ours: the session is marked
  NEEDS_LOGIN with "logged out at the end of the trading day", its token dropped, an audit row
  written, and the copier closes the account's client and order-notify socket. Until the next
  IST day begins the copier does not log API-key accounts in again (`after_close`).

With ``TRADING_ROUND_THE_CLOCK`` (the sandbox) every exchange trades until midnight IST, so
rows expire and sessions end at midnight.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from accounts.models import BrokerAccount
from copytrade.lib import calendar, clock
from trading.audit import record_audit
from trading.engine import alerts, jobs, transitions
from trading.engine.reasons import Reason, message
from trading.models import AlertKind, BrokerSession, CopyTrade

if TYPE_CHECKING:
    from trading.engine.runner import Copier

logger = logging.getLogger("trading.engine.lifecycle.day")

Status = CopyTrade.Status
LOGGED_OUT = "Logged out at the end of the trading day ({at} IST); log in again on the next day."
EXIT_EXPIRED_ALERT = (
    "{follower}'s exit of {quantity} {symbol} was not sent before {exchange} closed: the "
    "follower still holds that position. Close it by hand or review it tomorrow."
)


#: How often the copier looks (database only: the PENDING rows and the ready sessions).
CHECK_SECONDS = 30.0


def _round_the_clock() -> bool:
    return calendar.round_the_clock_from_settings()


def _midnight_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=clock.IST)


def row_cutoff(exchange: str, decided_at: datetime) -> datetime:
    """When a PENDING row decided at ``decided_at`` for ``exchange`` expires: that exchange's
    last session end of the IST day it was decided on, or the end of that day when it was
    decided after the close or the exchange does not trade that day."""
    day = decided_at.astimezone(clock.IST).date()
    try:
        end = calendar.session_end(exchange, day, round_the_clock=_round_the_clock())
    except ValueError:  # an exchange the calendar does not know: the day's end
        end = None
    if end is None or decided_at >= end:
        return _midnight_after(day)
    return end


def after_close(at: datetime | None = None) -> bool:
    """Whether every exchange has closed for today (IST): sessions are logged out and the
    copier does not log accounts in again until the next day."""
    now = at or clock.now()
    end = calendar.day_end(now.astimezone(clock.IST).date(), round_the_clock=_round_the_clock())
    return end is not None and now >= end


@dataclass
class DayResult:
    expired: list[int] = field(default_factory=list)
    logged_out: list[int] = field(default_factory=list)


def _waiting_text(reason: str) -> str:
    text = reason or ""
    if text:
        return text.removeprefix("Exit waiting: ").rstrip(".")
    return "not yet sent"


def expire_unsent(now: datetime) -> list[int]:
    """Every PENDING copy past its day's close → EXPIRED ``end_of_day`` (conditional, each with
    its transition); an expired exit alerts the master. Returns the expired ids."""
    rows = list(
        CopyTrade.objects.filter(status=Status.PENDING)
        .order_by("pk")
        .values(
            "pk",
            "exchange",
            "decided_at",
            "intent",
            "reason",
            "quantity",
            "trading_symbol",
            "master_id",
            "follower_id",
            "follower__display_name",
        )
    )
    expired = []
    for row in rows:
        exchange = str(row["exchange"])
        cutoff = row_cutoff(exchange, row["decided_at"])
        if now < cutoff:
            continue
        closed = cutoff.astimezone(clock.IST).strftime("%d %b %H:%M IST")
        text = message(
            Reason.END_OF_DAY,
            exchange=exchange,
            closed=closed,
            waiting=_waiting_text(row["reason"]),
        )
        with transaction.atomic():
            moved = transitions.move(
                row["pk"],
                from_statuses=(Status.PENDING,),
                to=Status.EXPIRED,
                at=now,
                note=text,
                reason_code=Reason.END_OF_DAY.value,
                reason=text,
                next_attempt_at=None,
                claimed_by="",
            )
            if moved is None:
                continue  # claimed or cancelled meanwhile
            if row["intent"] == CopyTrade.Intent.EXIT:
                alerts.raise_alert(
                    kind=AlertKind.EXIT_DELAYED,
                    master_id=row["master_id"],
                    follower_id=row["follower_id"],
                    copy_trade_id=row["pk"],
                    message=EXIT_EXPIRED_ALERT.format(
                        follower=row["follower__display_name"],
                        quantity=row["quantity"],
                        symbol=row["trading_symbol"],
                        exchange=exchange,
                    ),
                    at=now,
                )
        expired.append(row["pk"])
    if expired:
        logger.warning(
            "unsent copies expired at the end of the trading day",
            extra={"ctx": {"count": len(expired)}},
        )
    return expired


def log_out_sessions(now: datetime) -> list[int]:
    """Log out every ready session of a previous IST day, and today's once every exchange
    has closed. Returns the account ids logged out (the copier closes their clients)."""
    today = now.astimezone(clock.IST).date()
    ready = BrokerSession.objects.filter(state=BrokerSession.State.READY)
    if not after_close(now):
        ready = ready.exclude(trading_day=today)
    candidates = list(ready.values_list("pk", "account_id", "trading_day"))
    text = LOGGED_OUT.format(at=now.astimezone(clock.IST).strftime("%d %b %H:%M"))
    accounts = {a.pk: a for a in BrokerAccount.objects.filter(pk__in=[c[1] for c in candidates])}
    out = []
    for pk, account_id, day in candidates:
        with transaction.atomic():
            changed = BrokerSession.objects.filter(pk=pk, state=BrokerSession.State.READY).update(
                state=BrokerSession.State.NEEDS_LOGIN,
                session_token_encrypted="",
                last_error=text,
                updated_at=timezone.now(),
            )
            if not changed:
                continue
            account = accounts.get(account_id)
            record_audit(
                actor=None,
                actor_repr="copier",
                action="broker_session.logout",
                target=account,
                master=account.master if account is not None else None,
                before={"state": BrokerSession.State.READY, "trading_day": str(day or "")},
                after={"state": BrokerSession.State.NEEDS_LOGIN, "why": "end of trading day"},
            )
        out.append(account_id)
    if out:
        logger.info(
            "sessions logged out at the end of the trading day", extra={"ctx": {"count": len(out)}}
        )
    return out


def close_day(now: datetime) -> DayResult:
    """Both steps, in the copier's database thread (tests call it directly too)."""
    return DayResult(expired=expire_unsent(now), logged_out=log_out_sessions(now))


@jobs.periodic("end_of_day", every=CHECK_SECONDS)
async def end_of_day(copier: Copier) -> None:
    result = await copier.db(close_day, clock.now())
    for account_id in result.logged_out:
        await copier._drop_client(account_id)
