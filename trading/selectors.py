"""Reads for the dashboards and the API. Each selector carries the access rule: a follower
sees only its own rows, a master only its own followers' rows, anybody else nothing (staff use
the admin). Querysets come ready: `select_related` and an explicit `order_by`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Count, Prefetch, QuerySet
from django.utils import timezone

from accounts.models import BrokerAccount, Follower, Master, User
from copytrade.lib import clock
from trading.models import (
    BrokerSession,
    CopyTrade,
    CopyTradeStatus,
    DailyPnl,
    FollowerBoard,
    MasterFeed,
    MasterOrder,
    ReadinessItem,
    ReadinessReport,
    ReadinessRequest,
)

IST = clock.IST


# --- The trading day ---------------------------------------------------------------------------
def trading_day(now: datetime | None = None) -> date:
    """Today in India (the product's clock, copytrade.lib.clock): the day "today" means on
    every board, whatever the server's zone."""
    return (now or clock.now()).astimezone(IST).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of an IST calendar day as aware datetimes."""
    start = datetime.combine(day, time.min, tzinfo=IST)
    return start, start + timedelta(days=1)


# --- Access rules ------------------------------------------------------------------------------
def master_of(user: Any) -> Master | None:
    if getattr(user, "role", None) != User.Role.MASTER:
        return None
    return Master.objects.filter(user_id=user.pk).first()


def follower_of(user: Any) -> Follower | None:
    if getattr(user, "role", None) != User.Role.FOLLOWER:
        return None
    return Follower.objects.select_related("master").filter(user_id=user.pk).first()


def copy_trades_for(user: Any) -> QuerySet[CopyTrade]:
    """Copy trades `user` may see, newest first: a follower its own, a master its followers'."""
    base = CopyTrade.objects.select_related("follower", "master__user").order_by(
        "-decided_at", "-id"
    )
    role = getattr(user, "role", None)
    if not getattr(user, "is_authenticated", False):
        return base.none()
    if role == User.Role.FOLLOWER:
        return base.filter(follower__user_id=user.pk)
    if role == User.Role.MASTER:
        return base.filter(follower__master__user_id=user.pk)
    return base.none()


def followers_for(user: Any) -> QuerySet[Follower]:
    """Followers `user` may see: a master its own (active first), anybody else none."""
    if getattr(user, "role", None) != User.Role.MASTER:
        return Follower.objects.none()
    return (
        Follower.objects.filter(master__user_id=user.pk)
        .select_related("user", "user__broker_account", "user__broker_account__session")
        .order_by("-is_active", "display_name", "id")
    )


# --- Statistics --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stats:
    """Counts by status, as the board shows them. "pending" includes copies being sent."""

    total: int = 0
    successful: int = 0
    pending: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0
    expired: int = 0
    unknown: int = 0

    @classmethod
    def from_counts(cls, counts: dict[str, int]) -> Stats:
        return cls(
            total=sum(counts.values()),
            successful=counts.get(CopyTradeStatus.SUCCESS, 0),
            pending=counts.get(CopyTradeStatus.PENDING, 0) + counts.get(CopyTradeStatus.SENDING, 0),
            failed=counts.get(CopyTradeStatus.FAILED, 0),
            cancelled=counts.get(CopyTradeStatus.CANCELLED, 0),
            skipped=counts.get(CopyTradeStatus.SKIPPED, 0),
            expired=counts.get(CopyTradeStatus.EXPIRED, 0),
            unknown=counts.get(CopyTradeStatus.UNKNOWN, 0),
        )

    def items(self) -> list[tuple[str, str, int]]:
        """(key, label, value) in display order."""
        return [
            ("total", "Total", self.total),
            ("successful", "Successful", self.successful),
            ("pending", "Pending", self.pending),
            ("failed", "Failed", self.failed),
            ("skipped", "Skipped", self.skipped),
            ("expired", "Expired", self.expired),
            ("unknown", "Unknown", self.unknown),
            ("cancelled", "Cancelled", self.cancelled),
        ]


def stats_between(
    trades: QuerySet[CopyTrade], start: datetime | None = None, end: datetime | None = None
) -> Stats:
    """Counts by status of the copied orders among `trades` decided in [start, end) (an
    aggregate; for small ranges). A copied order is a place row: the modify and cancel rows a
    master's modification or cancel adds change that order, they are not more copies."""
    qs = trades.order_by().filter(action=CopyTrade.Action.PLACE)
    if start is not None:
        qs = qs.filter(decided_at__gte=start)
    if end is not None:
        qs = qs.filter(decided_at__lt=end)
    rows = qs.values("status").annotate(n=Count("id"))
    return Stats.from_counts({row["status"]: row["n"] for row in rows})


def board_stats(board: FollowerBoard | None) -> Stats:
    """Overall counts from the trigger-maintained counters: no scan of the trades."""
    if board is None:
        return Stats()
    return Stats.from_counts(
        {
            CopyTradeStatus.PENDING: board.pending,
            CopyTradeStatus.SENDING: board.sending,
            CopyTradeStatus.SUCCESS: board.success,
            CopyTradeStatus.FAILED: board.failed,
            CopyTradeStatus.CANCELLED: board.cancelled,
            CopyTradeStatus.EXPIRED: board.expired,
            CopyTradeStatus.UNKNOWN: board.unknown,
            CopyTradeStatus.SKIPPED: board.skipped,
        }
    )


# --- Broker session state ----------------------------------------------------------------------
@dataclass(frozen=True)
class SessionView:
    """An account's AliceBlue session as a person needs to read it (the same rule as
    trading.brokers.sessions.session_view: yesterday's session needs today's login)."""

    state: str  # BrokerSession.State value, or "no_account"
    label: str
    login_method: str = ""
    last_error: str = ""
    account_id: int | None = None

    @property
    def ready(self) -> bool:
        return self.state == BrokerSession.State.READY


def session_view(
    *,
    account_id: int | None,
    state: str | None,
    session_day: date | None,
    login_method: str = "",
    last_error: str = "",
    today: date | None = None,
) -> SessionView:
    if account_id is None:
        return SessionView("no_account", "No AliceBlue account linked")
    if state is None or (
        state == BrokerSession.State.READY and session_day != (today or trading_day())
    ):
        state = BrokerSession.State.NEEDS_LOGIN
    return SessionView(
        state,
        str(BrokerSession.State(state).label),
        login_method,
        last_error if state != BrokerSession.State.READY else "",
        account_id,
    )


def session_view_for_user(user: Any) -> SessionView:
    row = (
        BrokerAccount.objects.filter(owner_id=user.pk)
        .values_list(
            "id", "login_method", "session__state", "session__trading_day", "session__last_error"
        )
        .first()
    )
    if row is None:
        return session_view(account_id=None, state=None, session_day=None)
    account_id, method, state, day, error = row
    return session_view(
        account_id=account_id,
        state=state,
        session_day=day,
        login_method=method,
        last_error=error or "",
    )


# --- The follower board (the hot path: raw, indexed reads) --------------------------------------
# The board is polled by every follower every 5 s. Its reads are written as plain SQL over
# unique or indexed keys: the ORM's query compilation alone costs more here than the reads
# (see docs/BENCHMARKS.md). Table names come from the models.

STATUSES: tuple[str, ...] = tuple(CopyTradeStatus.values)
_BOARD_COUNT_COLUMNS = (
    "pending",
    "sending",
    "success",
    "failed",
    "cancelled",
    "expired",
    "unknown",
    "skipped",
)


@dataclass(frozen=True)
class BoardLogin:
    """The user row's fields the poll's login check needs (see trading.fastauth)."""

    password: str
    is_active: bool
    role: str
    session_data: str | None = None


@dataclass(frozen=True)
class BoardState:
    """Everything the board's refresh needs to decide "unchanged", from one indexed query."""

    follower_id: int
    display_name: str
    version: int
    token: str
    session: SessionView
    paused: bool
    active: bool
    entries_paused_by_master: bool
    counts: dict[str, int] = field(default_factory=dict)
    # Every copy trade row the board lists (modify and cancel rows too); `counts` and
    # `overall` count copied orders only.
    rows: int = 0

    @property
    def overall(self) -> Stats:
        return Stats.from_counts(self.counts)


@cache
def _board_state_sql(with_session: bool) -> str:
    board_cols = ", ".join(f"b.{col}" for col in _BOARD_COUNT_COLUMNS)
    from django.contrib.sessions.models import Session

    # With a session key, the session row joins in (it must exist and be unexpired): the
    # poll's login check and change check are then one query (see trading.fastauth).
    session = (
        f"JOIN {Session._meta.db_table} ds ON ds.session_key = %s AND ds.expire_date > %s "
        if with_session
        else ""
    )
    return (
        "SELECT u.password, u.is_active, u.role, "
        "f.id, f.display_name, f.updated_at, f.is_paused, f.is_active, m.entries_paused, "
        f"b.version, b.total, {board_cols}, "
        "a.id, a.login_method, s.state, s.trading_day, s.updated_at, s.last_error"
        + (", ds.session_data " if with_session else " ")
        + f"FROM {User._meta.db_table} u "
        f"JOIN {Follower._meta.db_table} f ON f.user_id = u.id "
        f"JOIN {Master._meta.db_table} m ON m.id = f.master_id "
        + session
        + f"LEFT JOIN {FollowerBoard._meta.db_table} b ON b.follower_id = f.id "
        f"LEFT JOIN {BrokerAccount._meta.db_table} a ON a.owner_id = u.id "
        f"LEFT JOIN {BrokerSession._meta.db_table} s ON s.account_id = a.id "
        "WHERE u.id = %s"
    )


def board_state_with_login(
    user_id: int, *, now: datetime | None = None, session_key: str | None = None
) -> tuple[BoardLogin, BoardState] | None:
    """The follower's board state (and its user's login fields), in one query over unique keys.

    The token a page carries covers everything the board shows: the trigger-maintained copy
    trade version, the IST day (today's statistics reset at midnight), the follower's own and
    its master's pause switches and the broker session. Equal token, nothing to re-render.

    With `session_key`, the same query also requires that database session to exist unexpired
    and returns its data in `BoardLogin.session_data` (the poll's login check).
    """
    with connection.cursor() as cursor:
        if session_key is None:
            cursor.execute(_board_state_sql(False), [user_id])
        else:
            expiry = connection.ops.adapt_datetimefield_value(timezone.now())
            cursor.execute(_board_state_sql(True), [session_key, expiry, user_id])
        row = cursor.fetchone()
    if row is None:
        return None
    session_data = row[-1] if session_key is not None else None
    if session_key is not None:
        row = row[:-1]
    (
        password,
        user_active,
        role,
        follower_id,
        name,
        f_updated,
        paused,
        active,
        m_paused,
        version,
        rows,
        *rest,
    ) = row
    counts = rest[: len(_BOARD_COUNT_COLUMNS)]
    account_id, method, s_state, s_day, s_updated, s_error = rest[len(_BOARD_COUNT_COLUMNS) :]
    today = trading_day(now)
    if isinstance(s_day, str):  # SQLite hands dates back as text in some builds
        s_day = date.fromisoformat(s_day)
    session = session_view(
        account_id=account_id,
        state=s_state,
        session_day=s_day,
        login_method=method or "",
        last_error=s_error or "",
        today=today,
    )
    raw = "|".join(
        str(part)
        for part in (
            version or 0,
            today,
            f_updated,
            bool(paused),
            bool(active),
            bool(m_paused),
            method,
            s_state,
            s_day,
            s_updated,
        )
    )
    state = BoardState(
        follower_id=follower_id,
        display_name=name,
        version=version or 0,
        token=hashlib.blake2b(raw.encode(), digest_size=8).hexdigest(),
        session=session,
        paused=bool(paused),
        active=bool(active),
        entries_paused_by_master=bool(m_paused),
        counts={
            status.upper(): int(n or 0)
            for status, n in zip(_BOARD_COUNT_COLUMNS, counts, strict=True)
        },
        rows=int(rows or 0),
    )
    login = BoardLogin(
        password=password, is_active=bool(user_active), role=role, session_data=session_data
    )
    return login, state


def board_state(user_id: int, *, now: datetime | None = None) -> BoardState | None:
    loaded = board_state_with_login(user_id, now=now)
    return loaded[1] if loaded else None


@dataclass(frozen=True)
class BoardRow:
    """One copy trade as the board prints it (formatted once, in Python)."""

    id: int
    time_iso: str
    time_text: str
    symbol: str
    details: str
    side: str
    quantity: int
    master_quantity: int
    filled_note: str
    price_text: str
    price_note: str
    status: str
    status_label: str
    reason: str


_STATUS_LABELS = dict(CopyTradeStatus.choices)


def _aware(value: datetime) -> datetime:
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


def _price(value: object) -> str:
    """A price for display: at least two decimals, never a float's noise."""
    amount = Decimal(str(value))
    text = f"{amount:,.4f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


@cache
def _board_page_sql() -> str:
    return (
        "SELECT id, decided_at, exchange, trading_symbol, side, order_type, product, price, "  # noqa: S608 - constants and model table names only
        "average_price, quantity, master_quantity, filled_quantity, status, reason, manual, "
        f"intent, action FROM {CopyTrade._meta.db_table} WHERE follower_id = %s "
        "ORDER BY decided_at DESC, id DESC LIMIT %s OFFSET %s"
    )


def board_page(
    follower_id: int, *, page: int, per_page: int, total: int
) -> tuple[list[BoardRow], int, int]:
    """One page of a follower's copy trades, newest first, without counting the rows again
    (the total comes from the board counters). Returns (rows, page, number of pages)."""
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    with connection.cursor() as cursor:
        cursor.execute(_board_page_sql(), [follower_id, per_page, (page - 1) * per_page])
        fetched = cursor.fetchall()
    rows = []
    for (
        pk,
        decided,
        exchange,
        symbol,
        side,
        order_type,
        product,
        price,
        avg,
        qty,
        master_qty,
        filled,
        status,
        reason,
        manual,
        intent,
        action,
    ) in fetched:
        if isinstance(decided, str):
            decided = datetime.fromisoformat(decided)
        local = _aware(decided).astimezone(IST)
        details = [exchange, product, order_type]
        if manual:
            details.append("manual")
        if intent == CopyTrade.Intent.EXIT:
            details.append("exit")
        if action != CopyTrade.Action.PLACE:
            # a change of the follower's order the master's modification or cancel made
            details.append(action)
        if avg is not None:
            price_text, price_note = _price(avg), "avg"
        elif price is not None:
            price_text, price_note = _price(price), ""
        else:
            price_text, price_note = "market", "market"
        rows.append(
            BoardRow(
                id=pk,
                time_iso=local.isoformat(),
                time_text=local.strftime("%d %b %H:%M:%S"),
                symbol=symbol,
                details=" · ".join(details),
                side=side,
                quantity=qty,
                master_quantity=master_qty,
                filled_note=f"filled {filled}" if filled and filled != qty else "",
                price_text=price_text,
                price_note=price_note,
                status=status,
                status_label=_STATUS_LABELS.get(status, status),
                reason=reason,
            )
        )
    return rows, page, pages


@cache
def _today_sql() -> str:
    return (
        f"SELECT status, COUNT(*) FROM {CopyTrade._meta.db_table} "  # noqa: S608 - constants and model table names only
        "WHERE follower_id = %s AND decided_at >= %s AND decided_at < %s "
        f"AND action = '{CopyTrade.Action.PLACE.value}' GROUP BY status"
    )


def today_stats_for_follower(follower_id: int, *, now: datetime | None = None) -> Stats:
    start, end = day_bounds(trading_day(now))
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(_today_sql(), [follower_id, adapt(start), adapt(end)])
        return Stats.from_counts({status: int(n) for status, n in cursor.fetchall()})


# --- The master dashboard ----------------------------------------------------------------------
@dataclass(frozen=True)
class FollowerLine:
    follower: Follower
    session: SessionView
    last_copy: CopyTrade | None
    pnl_today: Decimal | None

    @property
    def multiplier_text(self) -> str:
        """1.5000 → "1.5", 2.0000 → "2" (never "2E+0")."""
        text = f"{self.follower.lot_multiplier:f}"
        return text.rstrip("0").rstrip(".") if "." in text else text

    @property
    def loss_used(self) -> Decimal | None:
        """Today's loss as a share of the daily-loss limit (0 when in profit)."""
        if self.pnl_today is None or not self.follower.max_daily_loss:
            return None
        loss = max(Decimal(0), -self.pnl_today)
        return min(Decimal(1), loss / self.follower.max_daily_loss)

    @property
    def loss_percent(self) -> int | None:
        used = self.loss_used
        return None if used is None else int(used * 100)

    @property
    def loss_reached(self) -> bool:
        return self.pnl_today is not None and -self.pnl_today >= self.follower.max_daily_loss


def todays_pnl(account_ids: list[int], *, day: date | None = None) -> dict[int, Decimal]:
    """Today's realised + unrealised P&L per broker account, as the copier last stored it
    (trading.engine.pnl, from the broker's position book). Missing: not known yet."""
    if not account_ids:
        return {}
    rows = DailyPnl.objects.filter(
        account_id__in=account_ids, trading_day=day or trading_day()
    ).values_list("account_id", "realised", "unrealised")
    return {account: realised + unrealised for account, realised, unrealised in rows}


def follower_lines(master: Master) -> list[FollowerLine]:
    """The master's followers with their live state, in three queries."""
    from django.db.models import OuterRef, Subquery

    latest = (
        CopyTrade.objects.filter(follower=OuterRef("pk"))
        .order_by("-decided_at", "-id")
        .values("id")[:1]
    )
    followers = list(
        Follower.objects.filter(master=master)
        .select_related("user", "user__broker_account", "user__broker_account__session")
        .annotate(last_copy_id=Subquery(latest))
        .order_by("-is_active", "display_name", "id")
    )
    last = CopyTrade.objects.in_bulk([f.last_copy_id for f in followers if f.last_copy_id])
    accounts = {f.pk: getattr(f.user, "broker_account", None) for f in followers}
    pnl = todays_pnl([a.pk for a in accounts.values() if a is not None])
    today = trading_day()
    lines = []
    for follower in followers:
        account = accounts[follower.pk]
        record = getattr(account, "session", None) if account is not None else None
        session = session_view(
            account_id=account.pk if account else None,
            state=record.state if record else None,
            session_day=record.trading_day if record else None,
            login_method=account.login_method if account else "",
            last_error=record.last_error if record else "",
            today=today,
        )
        lines.append(
            FollowerLine(
                follower=follower,
                session=session,
                last_copy=last.get(follower.last_copy_id),
                pnl_today=pnl.get(account.pk) if account else None,
            )
        )
    return lines


LATENCY_STEPS = (
    ("detect", "master accepted → received", "master_accepted_at", "received_at"),
    ("decide", "received → decided", "received_at", "decided_at"),
    ("send", "decided → sent", "decided_at", "sent_at"),
    ("ack", "sent → acknowledged", "sent_at", "acknowledged_at"),
)


@dataclass(frozen=True)
class CopyOutcome:
    copy: CopyTrade
    latencies_ms: list[tuple[str, str, int | None]]
    end_to_end_ms: int | None


@dataclass(frozen=True)
class OrderLine:
    order: MasterOrder
    outcomes: list[CopyOutcome]

    @property
    def stats(self) -> Stats:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            if outcome.copy.action != CopyTrade.Action.PLACE:
                continue  # a change of a copied order (listed, labelled), not another copy
            counts[outcome.copy.status] = counts.get(outcome.copy.status, 0) + 1
        return Stats.from_counts(counts)


def _ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return int((end - start).total_seconds() * 1000)


def recent_master_orders(master: Master, *, limit: int = 10) -> list[OrderLine]:
    """The master's latest orders, each with every follower's copies and their latencies
    (from CopyTrade's timestamps: master accepted → received → decided → sent → acked)."""
    orders = list(
        MasterOrder.objects.filter(master=master).order_by("-first_seen_at", "-id")[:limit]
    )
    copies: dict[int, list[CopyOutcome]] = {o.pk: [] for o in orders}
    for trade in (
        CopyTrade.objects.filter(event__master_order__in=orders)
        .select_related("follower", "event")
        .order_by("follower__display_name", "event_id", "leg", "id")
    ):
        steps = [
            (key, label, _ms(getattr(trade, start), getattr(trade, end)))
            for key, label, start, end in LATENCY_STEPS
        ]
        start = trade.master_accepted_at or trade.received_at
        copies[trade.event.master_order_id].append(
            CopyOutcome(trade, steps, _ms(start, trade.acknowledged_at))
        )
    return [OrderLine(order, copies[order.pk]) for order in orders]


@dataclass(frozen=True)
class CopierStatus:
    running: bool
    beat_at: datetime | None
    stale_after: int


def copier_status(*, now: datetime | None = None) -> CopierStatus:
    from django.conf import settings

    from trading.models import CopierHeartbeat

    stale_after = settings.COPIER_HEARTBEAT_STALE_SECONDS
    latest = CopierHeartbeat.objects.order_by("-beat_at").values_list("beat_at", flat=True).first()
    now = now or timezone.now()
    running = latest is not None and (now - latest).total_seconds() <= stale_after
    return CopierStatus(running=running, beat_at=latest, stale_after=stale_after)


# Feed states (trading.brokers.aliceblue.push.FeedState, recorded by the copier in MasterFeed).
FEED_DOWN = {"session_expired", "needs_login", "stopped"}
FEED_DEGRADED = {"silent", "disconnected", "push_not_enabled"}


@dataclass(frozen=True)
class FeedView:
    state: str
    level: str  # "ok" | "warn" | "danger" | "unknown"
    last_event_at: datetime | None
    last_poll_at: datetime | None
    last_error: str
    # A feed loss in progress (trading.engine.lifecycle.feedloss): since when, and why.
    lost_at: datetime | None = None
    lost_reason: str = ""


def master_feed(master: Master) -> FeedView:
    feed = MasterFeed.objects.filter(master=master).first()
    if feed is None:
        return FeedView("", "unknown", None, None, "")
    state = feed.push_state
    level = "danger" if state in FEED_DOWN else "warn" if state in FEED_DEGRADED else "ok"
    if feed.lost_at is not None:
        level = "danger"
    return FeedView(
        state,
        level,
        feed.last_event_at,
        feed.last_poll_at,
        feed.last_error,
        feed.lost_at,
        feed.lost_reason,
    )


def master_account_session(master: Master) -> tuple[Any, SessionView]:
    account = (
        BrokerAccount.objects.filter(owner_id=master.user_id).select_related("session").first()
    )
    if account is None:
        return None, session_view(account_id=None, state=None, session_day=None)
    record = getattr(account, "session", None)
    return account, session_view(
        account_id=account.pk,
        state=record.state if record else None,
        session_day=record.trading_day if record else None,
        login_method=account.login_method,
        last_error=record.last_error if record else "",
    )


def latest_readiness(master: Master) -> ReadinessReport | None:
    """The copy engine's stored readiness result for this master (issue 5), when present.

    `python manage.py readiness` and the copier's check before market open store it; its
    items (follower, reason) come with it, in the order they are listed."""
    items = ReadinessItem.objects.select_related("follower").order_by(
        "follower__display_name", "follower_id", "pk"
    )
    return (
        ReadinessReport.objects.filter(master=master)
        .prefetch_related(Prefetch("items", queryset=items))
        .order_by("-created_at", "-pk")
        .first()
    )


# --- Feed loss and reconciliation (trading.engine.lifecycle) ----------------------------------
@dataclass(frozen=True)
class ProposalGroup:
    """The open missed-exit proposals of one master order, one line per follower."""

    event_id: int
    order: Any
    found_at: datetime
    proposals: list[Any]


def exit_proposal_groups(master: Master, *, limit: int = 200) -> list[ProposalGroup]:
    """The master's OPEN missed-exit proposals, grouped by the master's order (oldest first)."""
    from trading.models import ExitProposal

    rows = (
        ExitProposal.objects.filter(master=master, status=ExitProposal.Status.OPEN)
        .select_related("late_copy__event__master_order", "follower")
        .order_by("late_copy__event_id", "follower__display_name", "pk")[:limit]
    )
    groups: dict[int, ProposalGroup] = {}
    for proposal in rows:
        event = proposal.late_copy.event
        group = groups.get(event.pk)
        if group is None:
            group = ProposalGroup(event.pk, event.master_order, event.received_at, [])
            groups[event.pk] = group
        group.proposals.append(proposal)
    return list(groups.values())


def open_drifts(master: Master, *, limit: int = 200) -> list[Any]:
    """The master's unresolved position drifts (reconciliation), oldest first."""
    from trading.models import PositionDrift

    return list(
        PositionDrift.objects.filter(master=master, resolved_at__isnull=True)
        .select_related("follower")
        .order_by("first_seen_at", "pk")[:limit]
    )


def readiness_request_waiting(master: Master) -> Any:
    """The master's "check now" the copier has not run yet (None when there is none)."""
    return (
        ReadinessRequest.objects.filter(master=master, done_at__isnull=True)
        .order_by("-requested_at")
        .first()
    )
