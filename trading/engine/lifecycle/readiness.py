"""Readiness (issue 5, item 5): before market open and on demand, every follower that would
not receive (some) copies today, and why.

    report = check(master=master)            # python manage.py readiness [--master USERNAME]

The copier runs the same check once per master and trading day at ``READINESS_AT`` (IST;
`readiness_before_open`, a periodic job) and when a master clicks "Check now" on the
dashboard (a `ReadinessRequest`, `readiness_on_request`), and the master dashboard shows the latest
`ReadinessReport` with its `ReadinessItem`s. Reasons, in the order they are listed:

* no AliceBlue account; **needs today's login** (no ready session for today's IST day);
* **paused** (entries are not copied; exits are);
* **daily loss reached** (today's stored P&L at or below the follower's max daily loss, the
  same rule as the entry check);
* **short of funds** (the broker's limits/RMS call: available cash at or below
  ``READINESS_MIN_FUNDS``);
* **push not enabled** (AliceBlue's order-notify push is off for the account: fills are only
  seen by polling, more slowly);
* **instrument data missing** (an exchange's contract master was not loaded today: that
  exchange's orders are skipped as instrument unknown).

Broker calls (funds, and the push token when the account's push state is not known yet) are
made only for accounts with a ready session, outside every transaction, and only while the
account's shared request budget keeps ``BUDGET_RESERVE`` requests back for copying; what
could not be checked is said in the report's note. The steps are split so the copier can run
them through its database thread and its asynchronous clients: `plan` (database), `probe` /
`aprobe` (network), `evaluate` (pure), `store` (database).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.models import BrokerAccount, Follower, Master
from copytrade.lib import calendar, clock
from copytrade.lib.money import format_inr
from trading.brokers import sessions
from trading.brokers.aliceblue import budget as persisted_budget
from trading.brokers.aliceblue import contracts
from trading.brokers.aliceblue.errors import BrokerError, PushNotEnabled
from trading.engine import jobs
from trading.models import (
    BrokerSession,
    DailyPnl,
    ReadinessItem,
    ReadinessReason,
    ReadinessReport,
    ReadinessRequest,
    ReadinessSource,
)

if TYPE_CHECKING:
    from trading.brokers.aliceblue.client import AliceBlueClient, AsyncAliceBlueClient
    from trading.engine.runner import Copier

logger = logging.getLogger("trading.engine.lifecycle.readiness")

#: Requests of the account's 15-minute budget the check never touches (copying needs them).
BUDGET_RESERVE = 150

NO_ACCOUNT = "No AliceBlue account is linked."
NEEDS_LOGIN = "Not connected for today ({why})."
NEEDS_LOGIN_API_KEY = " It connects by itself once its owner signs in to AliceBlue today."
PAUSED = "Paused{by}: entries are not copied (exits are)."
DAILY_LOSS = "Today's P&L {pnl} has reached the maximum daily loss {limit}: entries are skipped."
SHORT_OF_FUNDS = "Available funds {cash} (at most {minimum}): orders would be refused."
PUSH_NOT_ENABLED = (
    "AliceBlue's order push is not enabled for the account: its fills are seen by polling only."
)
INSTRUMENT_DATA = (
    "The contract master of {exchanges} was not loaded today: orders there are skipped "
    "(instrument unknown)."
)
KILL_SWITCH = "The kill switch is on: no entries are copied to any follower."
NOT_CHECKED = "Funds and push not checked for {names}: {why}."
BUDGET_LOW = "the request budget is low"


@dataclass(frozen=True)
class FollowerFacts:
    """What the database says about one active follower."""

    follower_id: int
    name: str
    account_id: int | None
    login_method: str
    session_ready: bool
    session_error: str
    push_state: str
    is_paused: bool
    paused_by: str
    max_daily_loss: Decimal
    daily_pnl: Decimal | None


@dataclass
class Plan:
    master_id: int
    trading_day: date
    kill_switch: bool
    followers: list[FollowerFacts] = field(default_factory=list)
    missing_exchanges: list[str] = field(default_factory=list)

    def probe_accounts(self) -> list[int]:
        return [f.account_id for f in self.followers if f.session_ready and f.account_id]


@dataclass(frozen=True)
class Probe:
    """What the broker said about one account (None: not asked or not answered)."""

    available_cash: Decimal | None = None
    push_enabled: bool | None = None
    error: str = ""


# --- database -----------------------------------------------------------------------------
def plan(master_id: int, at: datetime) -> Plan:
    """Every active follower of the master with its session, pause, P&L and push state."""
    day = at.astimezone(clock.IST).date()
    master = Master.objects.get(pk=master_id)
    result = Plan(master_id=master_id, trading_day=day, kill_switch=master.entries_paused)
    followers = list(
        Follower.objects.filter(master_id=master_id, is_active=True).order_by("display_name", "pk")
    )
    accounts = {
        a.owner_id: a
        for a in BrokerAccount.objects.filter(
            owner_id__in=[f.user_id for f in followers]
        ).select_related("session")
    }
    pnl = {
        row.account_id: row.realised + row.unrealised
        for row in DailyPnl.objects.filter(
            account_id__in=[a.pk for a in accounts.values()], trading_day=day
        )
    }
    for follower in followers:
        account = accounts.get(follower.user_id)
        record = getattr(account, "session", None) if account is not None else None
        ready = (
            record is not None
            and record.state == BrokerSession.State.READY
            and record.trading_day == day
        )
        result.followers.append(
            FollowerFacts(
                follower_id=follower.pk,
                name=follower.display_name,
                account_id=account.pk if account is not None else None,
                login_method=account.login_method if account is not None else "",
                session_ready=ready,
                session_error=(record.last_error if record is not None else "") or "",
                push_state=record.push_state if record is not None else "",
                is_paused=follower.is_paused,
                paused_by=follower.paused_by or "",
                max_daily_loss=follower.max_daily_loss,
                daily_pnl=pnl.get(account.pk) if account is not None else None,
            )
        )
    result.missing_exchanges = [
        exchange
        for exchange in contracts.default_exchanges()
        if not contracts.is_fresh(exchange, day)
    ]
    return result


def budget_allows(account_id: int) -> bool:
    return persisted_budget.remaining(account_id) >= BUDGET_RESERVE + 2


def store(
    plan: Plan, probes: dict[int, Probe], *, source: str, at: datetime
) -> ReadinessReport | None:
    """Write the report and its items in one transaction (None: the copier's check of today
    was already stored, e.g. by another copier)."""
    items, note = evaluate(plan, probes)
    blocked = {item[0] for item in items}
    try:
        with transaction.atomic():
            report = ReadinessReport.objects.create(
                master_id=plan.master_id,
                trading_day=plan.trading_day,
                source=source,
                created_at=at,
                followers_checked=len(plan.followers),
                followers_blocked=len(blocked),
                note=note[:500],
            )
            ReadinessItem.objects.bulk_create(
                ReadinessItem(report=report, follower_id=f, reason=r, detail=d[:300])
                for f, r, d in items
            )
    except IntegrityError:
        if source == ReadinessSource.SCHEDULED:
            return None
        raise
    for account_id, probe in probes.items():
        if probe.push_enabled is not None:
            sessions.set_push_state(
                account_id=account_id,
                state=(
                    BrokerSession.PushState.ENABLED
                    if probe.push_enabled
                    else BrokerSession.PushState.NOT_ENABLED
                ),
            )
    return report


# --- pure ---------------------------------------------------------------------------------
def min_funds() -> Decimal:
    return Decimal(str(getattr(settings, "READINESS_MIN_FUNDS", 0)))


def evaluate(plan: Plan, probes: dict[int, Probe]) -> tuple[list[tuple[int, str, str]], str]:
    """(follower id, reason, detail) for every reason a follower would miss copies, in the
    listed order, and the report's note."""
    items: list[tuple[int, str, str]] = []
    not_checked: list[str] = []
    why_not: set[str] = set()
    minimum = min_funds()
    for f in plan.followers:

        def add(reason: str, detail: str, f: FollowerFacts = f) -> None:
            items.append((f.follower_id, reason, detail))

        if f.account_id is None:
            add(ReadinessReason.NO_ACCOUNT, NO_ACCOUNT)
        elif not f.session_ready:
            why = f.session_error.rstrip(".") or "never connected today"
            text = NEEDS_LOGIN.format(why=why)
            if f.login_method == BrokerAccount.LoginMethod.API_KEY:
                text += NEEDS_LOGIN_API_KEY
            add(ReadinessReason.NEEDS_LOGIN, text)
        if f.is_paused:
            add(
                ReadinessReason.PAUSED,
                PAUSED.format(by=f" by the {f.paused_by}" if f.paused_by else ""),
            )
        if f.daily_pnl is not None and f.daily_pnl <= -f.max_daily_loss:
            add(
                ReadinessReason.DAILY_LOSS,
                DAILY_LOSS.format(
                    pnl=format_inr(f.daily_pnl, symbol=True),
                    limit=format_inr(f.max_daily_loss, symbol=True),
                ),
            )
        probe = probes.get(f.account_id) if f.account_id is not None else None
        if f.session_ready and (probe is None or probe.error):
            not_checked.append(f.name)
            why_not.add(probe.error if probe is not None else "not asked")
        cash = probe.available_cash if probe is not None else None
        if cash is not None and cash <= minimum:
            add(
                ReadinessReason.SHORT_OF_FUNDS,
                SHORT_OF_FUNDS.format(
                    cash=format_inr(cash, symbol=True),
                    minimum=format_inr(minimum, symbol=True),
                ),
            )
        push_off = (probe is not None and probe.push_enabled is False) or (
            (probe is None or probe.push_enabled is None)
            and f.push_state == BrokerSession.PushState.NOT_ENABLED
        )
        if push_off:
            add(ReadinessReason.PUSH_NOT_ENABLED, PUSH_NOT_ENABLED)
        if plan.missing_exchanges:
            add(
                ReadinessReason.INSTRUMENT_DATA,
                INSTRUMENT_DATA.format(exchanges=", ".join(plan.missing_exchanges)),
            )
    notes = []
    if plan.kill_switch:
        notes.append(KILL_SWITCH)
    if not_checked:
        notes.append(
            NOT_CHECKED.format(names=", ".join(not_checked), why="; ".join(sorted(why_not)))
        )
    return items, " ".join(notes)


# --- network (outside every transaction) ------------------------------------------------------
def _probe_result(cash: Any, push: bool | None) -> Probe:
    return Probe(available_cash=cash, push_enabled=push)


def probe(client: AliceBlueClient, *, push_state: str) -> Probe:
    """The account's funds (limits/RMS) and, when not known yet, whether push is enabled."""
    try:
        cash = client.funds().available_cash
        push: bool | None = None
        if push_state in ("", BrokerSession.PushState.UNKNOWN):
            try:
                client.create_ws_token()
                push = True
            except PushNotEnabled:
                push = False
    except BrokerError as exc:
        return Probe(error=f"the broker did not answer ({exc.message[:80]})")
    return _probe_result(cash, push)


async def aprobe(client: AsyncAliceBlueClient, *, push_state: str) -> Probe:
    try:
        cash = (await client.funds()).available_cash
        push: bool | None = None
        if push_state in ("", BrokerSession.PushState.UNKNOWN):
            try:
                await client.create_ws_token()
                push = True
            except PushNotEnabled:
                push = False
    except BrokerError as exc:
        return Probe(error=f"the broker did not answer ({exc.message[:80]})")
    return _probe_result(cash, push)


# --- the whole check ----------------------------------------------------------------------------
def check(
    *, master: Master, source: str = ReadinessSource.ON_DEMAND, at: datetime | None = None
) -> ReadinessReport:
    """Plan, ask the broker (each ready follower account, within its budget), store."""
    from trading.brokers.aliceblue.client import AliceBlueClient

    now = at or clock.now()
    found = plan(master.pk, now)
    facts = {f.account_id: f for f in found.followers if f.account_id is not None}
    probes: dict[int, Probe] = {}
    for account_id in found.probe_accounts():
        if not budget_allows(account_id):
            probes[account_id] = Probe(error=BUDGET_LOW)
            continue
        try:
            session = sessions.session_for(account=account_id)
        except BrokerError as exc:
            probes[account_id] = Probe(error=exc.message[:80])
            continue
        with AliceBlueClient(session) as client:
            probes[account_id] = probe(client, push_state=facts[account_id].push_state)
    report = store(found, probes, source=source, at=now)
    assert report is not None
    return report


def masters_due(at: datetime) -> list[int]:
    """Masters without today's scheduled check, once ``READINESS_AT`` (IST) has come on a
    trading day (and the day is not over)."""
    from trading.engine.lifecycle import day as trading_day

    ist = at.astimezone(clock.IST)
    rtc = calendar.round_the_clock_from_settings()
    if not any(
        calendar.is_trading_day(e, ist.date(), round_the_clock=rtc) for e in calendar.EXCHANGES
    ):
        return []
    if ist.time() < run_at() or trading_day.after_close(at):
        return []
    done = ReadinessReport.objects.filter(
        trading_day=ist.date(), source=ReadinessSource.SCHEDULED
    ).values_list("master_id", flat=True)
    return list(Master.objects.exclude(pk__in=done).order_by("pk").values_list("pk", flat=True))


def run_at() -> time:
    value = getattr(settings, "READINESS_AT", time(8, 45))
    return value if isinstance(value, time) else time.fromisoformat(str(value))


async def run_scheduled(
    copier: Copier,
    master_ids: Iterable[int],
    *,
    source: str = ReadinessSource.SCHEDULED,
) -> list[ReadinessReport]:
    """The copier's check: its database thread and its clients (sessions it already holds)."""
    out = []
    for master_id in master_ids:
        now = clock.now()
        found = await copier.db(plan, master_id, now)
        facts = {f.account_id: f for f in found.followers if f.account_id is not None}
        probes: dict[int, Probe] = {}
        for account_id in found.probe_accounts():
            client = copier._client(account_id)
            if client is None:
                probes[account_id] = Probe(error="the copier holds no session for it yet")
            elif not await copier.db(budget_allows, account_id):
                probes[account_id] = Probe(error=BUDGET_LOW)
            else:
                probes[account_id] = await aprobe(client, push_state=facts[account_id].push_state)
        report = await copier.db(store, found, probes, source=source, at=now)
        if report is not None:
            out.append(report)
            logger.info(
                "readiness checked",
                extra={"ctx": {"master": master_id, "blocked": report.followers_blocked}},
            )
    return out


@jobs.periodic("readiness", every=60.0, in_tick=False)
async def readiness_before_open(copier: Copier) -> None:
    """Once per master and trading day at READINESS_AT (IST). Not part of `Copier.tick`:
    tests call it (or `run_scheduled`) themselves."""
    due = await copier.db(masters_due, clock.now())
    if due:
        await run_scheduled(copier, due)


# --- "check now" (the master dashboard) -------------------------------------------------------
def open_requests() -> list[tuple[int, int]]:
    """(request id, master id) of every waiting "check now", oldest first."""
    return list(
        ReadinessRequest.objects.filter(done_at__isnull=True)
        .order_by("requested_at", "pk")
        .values_list("pk", "master_id")
    )


def finish_request(request_id: int, report_id: int | None, at: datetime) -> None:
    ReadinessRequest.objects.filter(pk=request_id, done_at__isnull=True).update(
        done_at=at, report_id=report_id
    )


@jobs.periodic("readiness_requests", every=3.0)
async def readiness_on_request(copier: Copier) -> None:
    """A master asked for a check on the dashboard: run it now (database first: usually
    there is nothing to do)."""
    for request_id, master_id in await copier.db(open_requests):
        reports = await run_scheduled(copier, [master_id], source=ReadinessSource.ON_DEMAND)
        await copier.db(finish_request, request_id, reports[0].pk if reports else None, clock.now())
