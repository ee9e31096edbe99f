"""The copier's synchronous database steps (the runner calls them in its database thread;
tests call them directly). No network here.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import F

from accounts.models import BrokerAccount, Follower, Master
from copytrade.lib import clock
from trading.brokers import sessions
from trading.brokers.aliceblue.errors import BrokerError
from trading.brokers.aliceblue.types import AccountSession, OrderRow, Position
from trading.engine import decide, sender, tracker, transitions
from trading.engine.sender import Claimed
from trading.models import (
    BrokerSession,
    CopierHeartbeat,
    CopyTrade,
    MasterFeed,
    MasterPosition,
    PositionBook,
)

logger = logging.getLogger("trading.engine")

Status = CopyTrade.Status


# --- Start-up -------------------------------------------------------------------------------------
def unapplied_migrations() -> list[str]:
    """Migrations not applied to the database ("app.name"), empty when up to date."""
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


# --- Accounts and sessions ------------------------------------------------------------------------
@dataclass(frozen=True)
class AccountState:
    """One broker account the copier may act for, and its session today (if ready)."""

    account_id: int
    client_id: str
    master_id: int
    #: The master whose own account this is (None for a follower's account).
    own_master_id: int | None
    follower_id: int | None
    session: AccountSession | None
    #: Changes whenever the session is replaced (a new login): rebuild the client.
    fingerprint: str
    state: str


def load_accounts() -> list[AccountState]:
    """Every active broker account of a master or an active follower, with today's session."""
    out = []
    accounts = BrokerAccount.objects.select_related("owner", "session").order_by("pk")
    if any(f.name == "active" for f in BrokerAccount._meta.get_fields()):
        # deactivated followers' accounts (the foundation's BrokerAccount.active) are gone
        accounts = accounts.filter(**{"active": True})
    masters = dict(Master.objects.values_list("user_id", "pk"))
    followers = {
        user_id: (pk, active)
        for user_id, pk, active in Follower.objects.values_list("user_id", "pk", "is_active")
    }
    today = sessions.trading_day()
    for account in accounts:
        own_master = masters.get(account.owner_id)
        follower = followers.get(account.owner_id)
        if own_master is None and (follower is None or not follower[1]):
            continue
        record = getattr(account, "session", None)
        session = None
        state = record.state if record is not None else BrokerSession.State.NEEDS_LOGIN
        fingerprint = ""
        if (
            record is not None
            and record.state == BrokerSession.State.READY
            and record.trading_day == today
        ):
            try:
                session = sessions.session_for(account=account.pk)
            except BrokerError:
                session = None
            fingerprint = f"{record.obtained_at.isoformat() if record.obtained_at else ''}"
        out.append(
            AccountState(
                account_id=account.pk,
                client_id=account.client_id,
                master_id=account.master_id,
                own_master_id=own_master,
                follower_id=follower[0] if follower is not None else None,
                session=session,
                fingerprint=fingerprint,
                state=str(state),
            )
        )
    return out


def mark_session_expired(account_id: int, reason: str) -> None:
    sessions.mark_expired_by_id(account_id=account_id, reason=reason)


@dataclass(frozen=True)
class LoginCandidate:
    account_id: int
    client_id: str
    api_key: Any  # Secret


def login_candidates(account_ids: Iterable[int]) -> list[LoginCandidate]:
    """API-key accounts among these without a ready session today, with their API keys
    (read as Secrets; never logged). None once every exchange has closed for the day: the
    end-of-day job logged the sessions out, and they stay out until the next IST day."""
    from trading.engine.lifecycle import day

    if day.after_close():
        return []
    out = []
    for account in BrokerAccount.objects.filter(
        pk__in=list(account_ids), login_method=BrokerAccount.LoginMethod.API_KEY
    ).exclude(api_key_encrypted=""):
        api_key = account.api_key()
        if api_key is not None:
            out.append(LoginCandidate(account.pk, account.client_id, api_key))
    return out


def store_login(account_id: int, grant: Any) -> None:
    """Store a session the copier obtained with the account's API key (audited as the
    system's connect, like the connect page's)."""
    account = BrokerAccount.objects.select_related("master").get(pk=account_id)
    sessions._store_grant(
        account=account, grant=grant, method="api_key (copier)", actor=None, request=None
    )


# --- The master's feed state ----------------------------------------------------------------------
def feed_baseline_day(master_id: int) -> date | None:
    return (
        MasterFeed.objects.filter(master_id=master_id)
        .values_list("baseline_day", flat=True)
        .first()
    )


def set_feed(master_id: int, **fields: Any) -> None:
    MasterFeed.objects.update_or_create(master_id=master_id, defaults=fields)


def master_copy_mode(master_id: int) -> str:
    return Master.objects.values_list("copy_mode", flat=True).get(pk=master_id)


def changes(master_id: int, rows: Sequence[OrderRow]) -> tuple[str, list[OrderRow]]:
    """(the master's copy mode, the rows that imply new events) — read-only."""
    return master_copy_mode(master_id), tracker.pending_changes(master_id, rows)


@dataclass
class Observed:
    """What `observe` did with one snapshot: what it recorded and claimed, and which rows
    wait for a quote (a market order to value) before they can be decided."""

    recorded: decide.Recorded
    claimed: list[Claimed]
    need_quote: list[OrderRow]


def observe(
    master_id: int,
    rows: Sequence[OrderRow],
    *,
    source: str,
    received_at: datetime,
    claimer: str,
    quotes: dict[str, Any] | None = None,
) -> Observed:
    """The copier's detection step in its database thread: diff the snapshot (read-only),
    decide each new row in its own transaction, then claim the new PENDING rows in another
    (exits first). Rows whose market order needs a quote (and has none in ``quotes``) are
    handed back undecided: the caller fetches a quote — no network here — and calls again."""
    from trading.engine import faults

    mode, changed = changes(master_id, rows)
    # Oldest first (the broker lists newest first): after a gap (a lost feed, a restart) an
    # exit and a later re-entry of one instrument must move the master's position in the
    # order they happened, or the exit is sized against the re-entered position.
    changed = sorted(
        changed,
        key=lambda r: (r.order_time is None, r.order_time or received_at, r.broker_order_id),
    )
    out = Observed(decide.Recorded(), [], [])
    quotes = quotes or {}
    for row in changed:
        if row.broker_order_id not in quotes and decide.needs_quote(mode, row):
            out.need_quote.append(row)
            continue
        recorded = decide.record_observation(
            master_id=master_id,
            row=row,
            source=source,
            received_at=received_at,
            quote=quotes.get(row.broker_order_id),
        )
        if recorded.event_ids:
            faults.kill_point("after_rows")
        out.recorded.extend(recorded)
    if out.recorded.pending_ids:
        out.claimed = sender.claim_planned(out.recorded.planned, claimer=claimer).claimed
    return out


def take_baseline(
    master_id: int,
    *,
    positions: Iterable[Position],
    book: Sequence[OrderRow],
    received_at: datetime,
    copier: str = "",
) -> decide.Recorded:
    """The first watch of the day: seed the master's position book from the broker and
    record the order book. Orders accepted within the staleness window are still copied
    (they are fresh); older ones are recorded as baseline and never copied. Their fills are
    part of the seeded positions either way."""
    today = clock.today_ist()
    with transaction.atomic():
        MasterPosition.objects.filter(master_id=master_id, book=PositionBook.BROKER).update(
            net_quantity=0, seeded_at=received_at
        )
        for p in positions:
            if p.product is None or not p.net_quantity:
                continue
            MasterPosition.objects.update_or_create(
                master_id=master_id,
                book=PositionBook.BROKER,
                exchange=p.exchange,
                token=p.token,
                product=p.product.value,
                defaults={
                    "trading_symbol": p.trading_symbol,
                    "net_quantity": p.net_quantity,
                    "seeded_at": received_at,
                },
            )
        MasterFeed.objects.update_or_create(
            master_id=master_id, defaults={"baseline_day": today, "copier": copier}
        )
    cutoff = received_at - timedelta(seconds=int(settings.COPIER_STALENESS_SECONDS))
    result = decide.Recorded()
    for row in sorted(book, key=lambda r: (r.order_time is None, r.order_time or received_at)):
        fresh = row.order_time is not None and row.order_time >= cutoff
        result.extend(
            decide.record_observation(
                master_id=master_id,
                row=row,
                source="poll",
                received_at=received_at,
                baseline=not fresh,
                seeded=True,
            )
        )
    return result


# --- Sweeping: unclaimed rows, retries, orphans, manual copies --------------------------------
def sweep_ids(now: datetime, grace: float) -> list[int]:
    """PENDING rows to claim now: unclaimed for ``grace`` seconds, or due for a retry."""
    due = set(decide.waiting_exit_ids(now))
    due.update(decide.fresh_pending_ids(now - timedelta(seconds=grace)))
    return sorted(due)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def alive_runs(now: datetime) -> set[str]:
    """Copier runs that are alive: a fresh heartbeat, not stopped, and — on this host — a
    process that still exists (a SIGKILLed copier's last heartbeat looks fresh for a while)."""
    stale = timedelta(seconds=int(settings.COPIER_HEARTBEAT_STALE_SECONDS))
    host = socket.gethostname()
    runs = set()
    for state, beat_at, pid in CopierHeartbeat.objects.values_list("state", "beat_at", "pid"):
        if not isinstance(state, dict) or now - beat_at > stale or state.get("stopped"):
            continue
        if state.get("host") == host and not _process_alive(pid):
            continue
        run = state.get("run_id")
        if run:
            runs.add(str(run))
    return runs


def orphan_cutoff() -> timedelta:
    """A SENDING row claimed longer ago than this is an orphan even if its copier lives."""
    read = float(settings.ALICEBLUE_READ_TIMEOUT) + float(settings.ALICEBLUE_CONNECT_TIMEOUT)
    return timedelta(seconds=read + sender.lookup_schedule()[-1] + 30)


def adopt_orphans(*, run_id: str, now: datetime, limit: int = 200) -> list[Claimed]:
    """SENDING rows whose copier died (or gave up): take them over to resolve them by tag.

    A row is adopted by a conditional update of ``claimed_by`` (two copiers never both
    adopt one). Adopted rows are never resent: they are looked up in the order book.
    """
    alive = alive_runs(now)
    alive.add(run_id)
    candidates = list(
        CopyTrade.objects.filter(status=Status.SENDING)
        .order_by("pk")
        .values_list("pk", "claimed_by", "claimed_at")[:limit]
    )
    old = now - orphan_cutoff()
    mine = sender.new_claimer(run_id)
    adopted_ids = []
    for pk, claimed_by, claimed_at in candidates:
        run = claimed_by.split("/", 1)[0]
        if run in alive and claimed_at is not None and claimed_at > old:
            continue
        took = CopyTrade.objects.filter(pk=pk, status=Status.SENDING, claimed_by=claimed_by).update(
            claimed_by=mine, claimed_at=now, version=F("version") + 1
        )
        if took:
            adopted_ids.append(pk)
    if not adopted_ids:
        return []
    rows = CopyTrade.objects.filter(pk__in=adopted_ids, claimed_by=mine).values(
        *sender._CLAIM_FIELDS
    )
    return [sender._claimed(r, mine) for r in rows]


def plan_manual(event_id: int, quote: Any) -> decide.Recorded:
    return decide.plan_manual_event(event_id, quote=quote)


# --- Heartbeat ------------------------------------------------------------------------------------
def beat(*, name: str, started_at: datetime, state: dict[str, Any]) -> None:
    now = clock.now()
    CopierHeartbeat.objects.update_or_create(
        name=name,
        defaults={"pid": os.getpid(), "started_at": started_at, "beat_at": now, "state": state},
    )


def open_tracking_accounts() -> list[int]:
    from trading.engine.tracking import accounts_with_open_copies

    return [a for a in accounts_with_open_copies() if a is not None]


def set_fields(copy_trade_id: int, **fields: Any) -> None:
    transitions.update_fields(copy_trade_id, at=clock.now(), **fields)
