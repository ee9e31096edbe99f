"""Decision: record a master order observation and decide every follower's copy trades, in
ONE short transaction with no network call inside.

    result = record_observation(master_id=..., row=order_row, source="push",
                                received_at=..., quote=Decimal("1502.5") | None)
    result.pending_ids   # CopyTrade ids to claim and send (exits first)

Inside the transaction: re-read what is stored about the order, work out the events the
snapshot implies (`tracker.implied_events`), upsert the `MasterOrder`, move the master's
position by new fills, insert each event (the unique constraint makes push + poll and two
copiers idempotent: an IntegrityError rolls everything back and the retry finds nothing new)
and, for an event that is copied, write every active follower's `CopyTrade` rows:

* mirror-orders mode copies on ``accepted``: the same order type, price and trigger;
* copy-fills mode copies each fill increment as a MARKET order (residual carried);
* ``rejected`` is never copied; ``modified``/``cancelled`` are recorded for the lifecycle
  engine (issue 5: `LIFECYCLE_HANDLERS`).

Each master order is classified against the master's position book (`MasterPosition`,
fills only): the part that reduces the position is an **exit** (sized in proportion from
the follower's position ledger, no entry check applies), the rest an **entry** (entry
checks in order, sizing, freeze legs). A row per leg: PENDING to send, SKIPPED with a named
reason, EXPIRED when the order was found after the staleness window. Every row gets its
deterministic broker tag and a transition.

The master's manual copy trades (`trading.services.create_manual_copy`) are planned here too,
by `plan_manual_event`, against their own position book.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q

from accounts.models import BrokerAccount, Follower, Master
from copytrade.lib import calendar, clock
from copytrade.lib.sizing import (
    EntrySize,
    next_fill_increment,
    size_exit,
    split_legs,
    split_reversal,
)
from trading.brokers import sessions
from trading.brokers.aliceblue.types import OrderRow, OrderStatus
from trading.engine import bulk, tags, tracker
from trading.engine.checks import CheckContext, FollowerView, OrderView, check_entry
from trading.engine.reasons import (
    EXIT_WAITING_LOGIN,
    EXIT_WAITING_MARKET,
    EventOutcome,
    Reason,
    message,
)
from trading.models import (
    BrokerSession,
    CopyTrade,
    DailyPnl,
    EventSource,
    Instrument,
    MasterOrder,
    MasterOrderEvent,
    MasterPosition,
    PositionBook,
    PositionLedger,
)

logger = logging.getLogger("trading.engine")

Status = CopyTrade.Status
ENTRY = CopyTrade.Intent.ENTRY.value
EXIT = CopyTrade.Intent.EXIT.value
#: Place orders still working at the broker (or about to be): they move the follower's
#: effective position.
IN_FLIGHT = (Status.PENDING, Status.SENDING, Status.SUCCESS, Status.UNKNOWN)
#: How soon a waiting exit (no session, market closed) is looked at again.
EXIT_RECHECK = timedelta(seconds=5)


def staleness() -> timedelta:
    return timedelta(seconds=int(settings.COPIER_STALENESS_SECONDS))


def _sign(side: str) -> int:
    return 1 if side == "BUY" else -1


def _side(side: str) -> Literal["BUY", "SELL"]:
    return "BUY" if side == "BUY" else "SELL"


# --- Results --------------------------------------------------------------------------------
@dataclass
class Recorded:
    """What one observation produced."""

    event_ids: list[int] = field(default_factory=list)
    #: PENDING copy trades to claim now, exits first.
    pending_ids: list[int] = field(default_factory=list)
    #: Every copy trade written (any status).
    copy_trade_ids: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    #: The PENDING rows as written (id -> column values, plus "_account_id"), so the claim
    #: right after the decision need not read them back (`sender.claim_planned`).
    planned: dict[int, dict[str, Any]] = field(default_factory=dict)

    def extend(self, other: Recorded) -> None:
        self.event_ids += other.event_ids
        self.pending_ids += other.pending_ids
        self.copy_trade_ids += other.copy_trade_ids
        self.kinds += other.kinds
        self.planned.update(other.planned)


# --- The order as the planner sees it ----------------------------------------------------------
def raw_product(row: OrderRow) -> str:
    if row.product is not None:
        return row.product.value
    for key in ("product", "Pcode", "pcode", "prd"):
        value = row.raw.get(key)
        if value:
            return str(value).strip().upper()
    return ""


def row_complexity(row: OrderRow) -> str:
    if raw_product(row) == "MTF":
        return "MTF"
    if row.complexity is not None:
        return row.complexity.value
    return "REGULAR"


def instrument_for(exchange: str, token: str, trading_symbol: str) -> Instrument | None:
    found = None
    if token:
        found = Instrument.objects.filter(exchange=exchange, token=token).first()
    if found is None and trading_symbol:
        found = (
            Instrument.objects.filter(exchange=exchange, trading_symbol=trading_symbol)
            .order_by("-refreshed_on")
            .first()
        )
    return found


def value_price_for(order: MasterOrder, quote: Decimal | None) -> tuple[Decimal | None, str]:
    """The price that values the follower order: the limit price, the trigger of a stop-market
    order, else (market) the master's average fill price or a quote's last traded price."""
    if order.order_type in ("LIMIT", "SL") and order.price:
        return order.price, "limit"
    if order.order_type == "SLM" and order.trigger_price:
        return order.trigger_price, "trigger"
    if order.average_price:
        return order.average_price, "master_avg"
    if quote is not None and quote > 0:
        return quote, "ltp"
    return None, ""


def needs_quote(copy_mode: str, row: OrderRow) -> bool:
    """Whether deciding this snapshot would value a market order without a price: then the
    caller fetches one quote (budgeted, outside the transaction) before recording."""
    if copy_mode != Master.CopyMode.MIRROR_ORDERS:
        return False
    if row.order_type is None or row.order_type.value != "MARKET" or row.average_price:
        return False
    return row.status.is_accepted


# --- Follower state ---------------------------------------------------------------------------
@dataclass
class FollowerState:
    view: FollowerView
    #: Signed net quantity in the position ledger (filled copies).
    ledger_net: int = 0
    #: Signed remaining quantity of this follower's working copies of the instrument.
    in_flight: int = 0

    @property
    def effective(self) -> int:
        return self.ledger_net + self.in_flight


def _decimal(value: Any, places: int) -> Decimal:
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    return number.quantize(Decimal(1).scaleb(-places))


def _json_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = json.loads(value) if value else []
    return tuple(str(v) for v in value or ())


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _follower_rows(master_id: int, follower_id: int | None = None) -> list[tuple[Any, ...]]:
    """Every active follower of the master with its broker account and today's session, as
    plain tuples: one indexed query (the ORM's per-row converters cost more than the query
    itself for a thousand followers on every event).

    A follower being deactivated (``deactivating_at``: its open positions are being
    flattened) receives no copy of a master event; ``follower_id`` selects that one follower,
    deactivating or not (the flatten's own exits)."""
    quote = connection.ops.quote_name
    follower = quote(Follower._meta.db_table)
    account = quote(BrokerAccount._meta.db_table)
    session = quote(BrokerSession._meta.db_table)
    active_account = ""
    if any(f.name == "active" for f in BrokerAccount._meta.get_fields()):
        # a deactivated account (the foundation's BrokerAccount.active) is no account
        active_account = f" AND a.{quote('active')} = %s"
    sql = (
        f"SELECT f.id, f.display_name, f.lot_multiplier, f.max_quantity, f.max_order_value, "  # noqa: S608
        f"f.max_daily_loss, f.allowed_instruments, f.allowed_product_types, f.is_paused, "
        f"a.id, s.state, s.trading_day "
        f"FROM {follower} f "
        f"LEFT JOIN {account} a ON a.owner_id = f.user_id{active_account} "
        f"LEFT JOIN {session} s ON s.account_id = a.id "
        f"WHERE f.master_id = %s AND f.is_active = %s "
    )
    params: list[Any] = [True] if active_account else []
    params += [master_id, True]
    if follower_id is None:
        sql += f"AND f.{quote('deactivating_at')} IS NULL "
    else:
        sql += "AND f.id = %s "
        params.append(follower_id)
    sql += "ORDER BY f.id"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def load_followers(
    master_id: int, *, exchange: str, token: str, product: str, follower_id: int | None = None
) -> list[FollowerState]:
    """Every active follower of the master with what the checks and the exit sizing need
    (four queries whatever the number of followers); only ``follower_id`` if given."""
    followers = _follower_rows(master_id, follower_id)
    # A session is ready by the broker client's own rule (sessions.session_for): today's IST
    # day by the product's clock. P&L rows are keyed by the same day.
    session_day = sessions.trading_day()
    today = clock.today_ist()
    pnl = {
        account_id: realised + unrealised
        for account_id, realised, unrealised in DailyPnl.objects.filter(
            account__master_id=master_id, trading_day=today
        ).values_list("account_id", "realised", "unrealised")
    }
    ledger = dict(
        PositionLedger.objects.filter(
            master_id=master_id, exchange=exchange, token=token, product=product, detached=False
        ).values_list("follower_id", "net_quantity")
    )
    in_flight: dict[int, int] = defaultdict(int)
    for row_follower, side, qty, filled in CopyTrade.objects.filter(
        master_id=master_id,
        exchange=exchange,
        token=token,
        product=product,
        action=CopyTrade.Action.PLACE,
        status__in=IN_FLIGHT,
        broker_final=False,
    ).values_list("follower_id", "side", "quantity", "ledger_quantity"):
        in_flight[row_follower] += _sign(side) * max(qty - filled, 0)
    states = []
    ready = BrokerSession.State.READY.value
    for (
        pk,
        display_name,
        multiplier,
        max_quantity,
        max_order_value,
        max_daily_loss,
        instruments,
        products,
        paused,
        account_id,
        state,
        day,
    ) in followers:
        view = FollowerView(
            id=pk,
            display_name=display_name,
            lot_multiplier=_decimal(multiplier, 4),
            max_quantity=int(max_quantity),
            max_order_value=_decimal(max_order_value, 2),
            max_daily_loss=_decimal(max_daily_loss, 2),
            allowed_instruments=_json_list(instruments),
            allowed_product_types=_json_list(products),
            is_paused=bool(paused),
            account_id=account_id,
            session_ready=state == ready and _date(day) == session_day,
            daily_pnl=pnl.get(account_id) if account_id is not None else None,
        )
        states.append(FollowerState(view, ledger_net=ledger.get(pk, 0), in_flight=in_flight[pk]))
    return states


# --- Row building --------------------------------------------------------------------------------
@dataclass
class Plan:
    """The copy trades decided for one event, built as plain rows and written in bulk.

    ``reference_at`` is the master's time the staleness window counts from: the order's
    acceptance (mirror orders) or the fill's time (copy fills), never later than when we
    saw it."""

    event: MasterOrderEvent
    order: MasterOrder
    now: datetime
    reference_at: datetime | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    _legs: dict[int, int] = field(default_factory=dict)

    def add(
        self,
        follower: FollowerState,
        *,
        intent: str,
        side: str,
        quantity: int,
        master_quantity: int,
        status: str,
        order_type: str | None = None,
        price: Decimal | None = None,
        trigger: Decimal | None = None,
        lot_size: int = 1,
        sizing_note: str = "",
        reason: Reason | None = None,
        reason_text: str = "",
        order_value: Decimal | None = None,
        value_price: Decimal | None = None,
        value_price_source: str = "",
        next_attempt_at: datetime | None = None,
    ) -> dict[str, Any]:
        leg = self._legs.get(follower.view.id, 0)
        self._legs[follower.view.id] = leg + 1
        order = self.order
        order_type = order_type or order.order_type
        row = {
            "event_id": self.event.pk,
            "master_id": order.master_id,
            "follower_id": follower.view.id,
            "leg": leg,
            "action": CopyTrade.Action.PLACE.value,
            "intent": intent,
            "manual": order.manual,
            "tag": tags.make_tag(self.event.pk, follower.view.id, leg),
            "exchange": order.exchange,
            "token": order.token,
            "trading_symbol": order.trading_symbol,
            "side": side,
            "order_type": order_type,
            "product": order.product,
            "complexity": order.complexity,
            "validity": order.validity,
            "price": price if order_type in ("LIMIT", "SL") else None,
            "trigger_price": trigger if order_type in ("SL", "SLM") else None,
            "master_quantity": master_quantity,
            "quantity": quantity,
            "lot_multiplier": follower.view.lot_multiplier,
            "lot_size": lot_size,
            "sizing_note": sizing_note[:200],
            "order_value": order_value,
            "value_price": value_price,
            "value_price_source": value_price_source,
            "daily_pnl": follower.view.daily_pnl,
            "status": status,
            "reason_code": reason.value if reason is not None else "",
            "reason": reason_text[:500],
            "master_accepted_at": self.reference_at,
            "received_at": self.event.received_at,
            "decided_at": self.now,
            "updated_at": self.now,
            "next_attempt_at": next_attempt_at,
            "_account_id": follower.view.account_id,
        }
        self.rows.append(row)
        return row

    def save(self) -> Recorded:
        """Write every row and its first transition (two statements and a read of the ids)."""
        if not self.rows:
            return Recorded()
        ids = bulk.insert_copy_trades(self.rows)
        bulk.insert_transitions(
            [
                (ids[row["tag"]], "", row["status"], row["reason"] or row["sizing_note"])
                for row in self.rows
            ],
            self.now,
        )
        pending = [
            row
            for row in self.rows
            if row["status"] == Status.PENDING and row["next_attempt_at"] is None
        ]
        pending.sort(key=lambda r: (r["intent"] != EXIT, ids[r["tag"]]))  # exits go first
        for row in pending:
            row["id"] = ids[row["tag"]]
        return Recorded(
            pending_ids=[row["id"] for row in pending],
            copy_trade_ids=sorted(ids.values()),
            planned={row["id"]: row for row in pending},
        )


@dataclass(frozen=True)
class OrderFacts:
    """The copied order's instrument facts and price for the value check."""

    lot_size: int | None
    freeze: int | None
    view: OrderView


def order_facts(order: MasterOrder, quote: Decimal | None) -> OrderFacts:
    instrument = instrument_for(order.exchange, order.token, order.trading_symbol)
    price, source = value_price_for(order, quote)
    lot = instrument.lot_size if instrument is not None else None
    freeze = instrument.freeze_quantity if instrument is not None else None
    view = OrderView(
        exchange=order.exchange,
        token=order.token,
        trading_symbol=order.trading_symbol,
        symbol=instrument.symbol if instrument is not None else "",
        side=order.side,
        order_type=order.order_type,
        product=order.product,
        complexity=order.complexity,
        lot_size=lot,
        freeze_quantity=freeze,
        value_price=price,
        value_price_source=source,
    )
    return OrderFacts(lot, freeze, view)


def reference_time(event: MasterOrderEvent, order: MasterOrder) -> datetime | None:
    """When the master did what is copied: acceptance (mirror) or this fill (copy fills)."""
    if event.kind in (tracker.PARTIAL, tracker.FILLED):
        when = event.broker_time
        if when is None or when > event.received_at:
            return event.received_at
        return when
    return order.accepted_at


def _late(reference_at: datetime | None, received_at: datetime, manual: bool) -> float | None:
    """Seconds the event was found after the master's time, if beyond the staleness window."""
    if reference_at is None or manual:
        return None
    late = (received_at - reference_at).total_seconds()
    return late if late > staleness().total_seconds() else None


def _add_exit(
    plan: Plan,
    f: FollowerState,
    *,
    facts: OrderFacts,
    master_before: int,
    reduce_qty: int,
    follower_base: int,
    already: int,
    ctx: CheckContext,
    late: float | None,
    order_type: str,
    price: Decimal | None,
    trigger: Decimal | None,
) -> None:
    """The exit part for one follower: proportional, whole lots, from the ledger; no entry
    check applies. ``already`` is what earlier rows of this master order exited (fills)."""
    lot = facts.lot_size or 1
    sized = size_exit(master_before, reduce_qty, follower_base, lot_size=lot)
    quantity = max(sized.quantity - already, 0)
    side = plan.order.side  # a reducing order's side is the exit's side
    if sized.quantity == 0 or quantity == 0:
        reason = Reason(sized.reason.value) if sized.reason is not None else Reason.ROUNDS_TO_ZERO
        if reason == Reason.FOLLOWER_FLAT and f.ledger_net:
            reason = Reason.NOTHING_TO_EXIT  # it holds a position, but exits in flight cover it
        plan.add(
            f,
            intent=EXIT,
            side=side,
            quantity=0,
            master_quantity=reduce_qty,
            status=Status.SKIPPED,
            lot_size=lot,
            sizing_note=sized.note,
            reason=reason,
            reason_text=message(reason),
        )
        return
    if late is not None:
        plan.add(
            f,
            intent=EXIT,
            side=side,
            quantity=quantity,
            master_quantity=reduce_qty,
            status=Status.SKIPPED,
            lot_size=lot,
            sizing_note=sized.note,
            reason=Reason.LATE_EXIT,
            reason_text=message(Reason.LATE_EXIT, late=round(late)),
        )
        return
    waiting: tuple[Reason, str] | None = None
    if f.view.account_id is None:
        waiting = (Reason.NO_BROKER_ACCOUNT, message(Reason.NO_BROKER_ACCOUNT))
    elif not f.view.session_ready:
        waiting = (Reason.NEEDS_LOGIN, EXIT_WAITING_LOGIN)
    else:
        from trading.engine.checks import market_open

        is_open, detail = market_open(facts.view, ctx)
        if not is_open:
            text = EXIT_WAITING_MARKET.format(exchange=facts.view.exchange, detail=detail)
            waiting = (Reason.MARKET_CLOSED, text)
    legs = split_legs(quantity, facts.freeze, lot) if quantity % lot == 0 else (quantity,)
    for leg_qty in legs:
        plan.add(
            f,
            intent=EXIT,
            side=side,
            quantity=leg_qty,
            master_quantity=reduce_qty,
            status=Status.PENDING,
            order_type=order_type,
            price=price,
            trigger=trigger,
            lot_size=lot,
            sizing_note=sized.note,
            reason=waiting[0] if waiting else None,
            reason_text=waiting[1] if waiting else "",
            next_attempt_at=plan.now + EXIT_RECHECK if waiting else None,
        )


def _add_entry(
    plan: Plan,
    f: FollowerState,
    *,
    facts: OrderFacts,
    master_quantity: int,
    ctx: CheckContext,
    late: float | None,
    order_type: str,
    price: Decimal | None,
    trigger: Decimal | None,
    sizing: EntrySize | None = None,
    carried_note: str = "",
) -> None:
    order = plan.order
    lot = facts.lot_size or 1
    if late is not None:
        plan.add(
            f,
            intent=ENTRY,
            side=order.side,
            quantity=sizing.quantity if sizing is not None else 0,
            master_quantity=master_quantity,
            status=Status.EXPIRED,
            lot_size=lot,
            reason=Reason.STALE,
            reason_text=(
                f"Found {round(late)} s after the master's acceptance: "
                + message(Reason.STALE, seconds=int(staleness().total_seconds()))
            ),
        )
        return
    result = check_entry(f.view, facts.view, master_quantity, ctx, sizing=sizing)
    sizing = result.sizing
    common: dict[str, Any] = {
        "intent": ENTRY,
        "side": order.side,
        "master_quantity": master_quantity,
        "lot_size": lot,
        "sizing_note": sizing.note if sizing is not None else "",
        "order_value": result.order_value,
        "value_price": facts.view.value_price,
        "value_price_source": facts.view.value_price_source,
        "order_type": order_type,
        "price": price,
        "trigger": trigger,
    }
    if result.reason is not None:
        plan.add(
            f,
            quantity=sizing.quantity if sizing is not None else 0,
            status=Status.SKIPPED,
            reason=result.reason,
            reason_text=result.message,
            **common,
        )
        return
    assert sizing is not None
    if sizing.quantity == 0:
        plan.add(
            f,
            quantity=0,
            status=Status.SKIPPED,
            reason=Reason.FILL_CARRIED,
            reason_text=message(Reason.FILL_CARRIED, note=carried_note or sizing.note),
            **common,
        )
        return
    for leg_qty in split_legs(sizing.quantity, facts.freeze, lot):
        plan.add(f, quantity=leg_qty, status=Status.PENDING, **common)


# --- The master's position book ---------------------------------------------------------------
def _position_row(order: MasterOrder, book: str) -> int:
    """The id of the master's position row for this order's instrument (created if new).

    A concurrent creator (another copier) makes the insert fail: the IntegrityError rolls the
    whole decision back and `record_observation` retries it from the start."""
    key = {
        "master_id": order.master_id,
        "book": book,
        "exchange": order.exchange,
        "token": order.token,
        "product": order.product,
    }
    found = MasterPosition.objects.filter(**key).values_list("pk", flat=True).first()
    if found is not None:
        return found
    row = MasterPosition(**key, trading_symbol=order.trading_symbol)
    row.save(force_insert=True)
    return row.pk


def master_position_before(order: MasterOrder, book: str) -> int:
    """The master's net position excluding this order's own (already applied) fills."""
    net = (
        MasterPosition.objects.filter(
            master_id=order.master_id,
            book=book,
            exchange=order.exchange,
            token=order.token,
            product=order.product,
        )
        .values_list("net_quantity", flat=True)
        .first()
        or 0
    )
    return net - _sign(order.side) * order.position_quantity


def apply_master_fills(order: MasterOrder, book: str) -> int:
    """Move the master's position by fills not applied yet (conditional on
    position_quantity, so push + poll and two copiers apply each fill once)."""
    delta = order.filled_quantity - order.position_quantity
    if delta <= 0:
        return 0
    moved = MasterOrder.objects.filter(
        pk=order.pk, position_quantity=order.position_quantity
    ).update(position_quantity=order.filled_quantity)
    if not moved:
        return 0
    MasterPosition.objects.filter(pk=_position_row(order, book)).update(
        net_quantity=F("net_quantity") + _sign(order.side) * delta
    )
    order.position_quantity = order.filled_quantity
    return delta


# --- Planning -------------------------------------------------------------------------------------
def _previous_quantities(order: MasterOrder, intent: str) -> dict[int, int]:
    """Per follower: the quantity of earlier rows of this master order (copy-fills mode)."""
    out: dict[int, int] = defaultdict(int)
    for follower_id, qty in CopyTrade.objects.filter(
        event__master_order=order, intent=intent, action=CopyTrade.Action.PLACE
    ).values_list("follower_id", "quantity"):
        out[follower_id] += qty
    return out


def plan_event(
    event: MasterOrderEvent,
    order: MasterOrder,
    *,
    master: Master,
    master_before: int,
    quote: Decimal | None,
    now: datetime,
) -> tuple[Recorded, str, str]:
    """Decide the copy trades of one copyable event. Returns (recorded, outcome, note)."""
    followers = load_followers(
        order.master_id, exchange=order.exchange, token=order.token, product=order.product
    )
    if not followers:
        return Recorded(), EventOutcome.NO_FOLLOWERS, "The master has no active followers."
    ctx = CheckContext(
        kill_switch=master.entries_paused,
        now=now,
        round_the_clock=calendar.round_the_clock_from_settings(),
    )
    facts = order_facts(order, quote)
    reference_at = reference_time(event, order)
    late = _late(reference_at, event.received_at, order.manual)
    plan = Plan(event, order, now, reference_at)
    fills_mode = event.kind in (tracker.PARTIAL, tracker.FILLED)
    if fills_mode:
        filled = event.filled_quantity
        exit_total, entry_total = (
            split_reversal(master_before, _side(order.side), filled) if filled else (0, 0)
        )
        prev_exit = _previous_quantities(order, EXIT)
        prev_entry = _previous_quantities(order, ENTRY)
        for f in followers:
            if exit_total:
                already = prev_exit[f.view.id]
                base_abs = abs(f.effective) + already
                base = base_abs if master_before > 0 else -base_abs
                _add_exit(
                    plan,
                    f,
                    facts=facts,
                    master_before=master_before,
                    reduce_qty=exit_total,
                    follower_base=base,
                    already=already,
                    ctx=ctx,
                    late=late,
                    order_type="MARKET",
                    price=None,
                    trigger=None,
                )
            if entry_total:
                increment = next_fill_increment(
                    entry_total,
                    f.view.lot_multiplier,
                    sent_so_far=prev_entry[f.view.id],
                    lot_size=facts.lot_size or 1,
                    max_quantity=f.view.max_quantity,
                )
                sizing = increment.sizing
                inc_sizing = EntrySize(
                    quantity=increment.quantity,
                    lots=increment.lots,
                    lot_size=sizing.lot_size,
                    raw=sizing.raw,
                    capped=sizing.capped,
                    raised_to_minimum=sizing.raised_to_minimum,
                    skip_reason=sizing.skip_reason,
                    note=(
                        f"fills {entry_total}: target {increment.target}, "
                        f"sent {increment.sent} → {increment.quantity} ({sizing.note})"
                    )[:200],
                )
                _add_entry(
                    plan,
                    f,
                    facts=facts,
                    master_quantity=entry_total,
                    ctx=ctx,
                    late=late,
                    order_type="MARKET",
                    price=None,
                    trigger=None,
                    sizing=inc_sizing if facts.lot_size is not None else None,
                    carried_note=inc_sizing.note,
                )
    else:
        exit_qty, entry_qty = split_reversal(master_before, _side(order.side), order.quantity)
        for f in followers:
            if exit_qty:
                _add_exit(
                    plan,
                    f,
                    facts=facts,
                    master_before=master_before,
                    reduce_qty=exit_qty,
                    follower_base=f.effective,
                    already=0,
                    ctx=ctx,
                    late=late,
                    order_type=order.order_type,
                    price=order.price,
                    trigger=order.trigger_price,
                )
            if entry_qty:
                _add_entry(
                    plan,
                    f,
                    facts=facts,
                    master_quantity=entry_qty,
                    ctx=ctx,
                    late=late,
                    order_type=order.order_type,
                    price=order.price,
                    trigger=order.trigger_price,
                )
    recorded = plan.save()
    _alert_daily_loss(plan, followers)
    pending = len(recorded.pending_ids)
    note = f"{len(plan.rows)} copy trades for {len(followers)} followers, {pending} to send"
    return recorded, EventOutcome.COPIED, note


def _alert_daily_loss(plan: Plan, followers: list[FollowerState]) -> None:
    """Followers whose entry was skipped for the daily loss: their master is told, once per
    follower per day (`alerts.daily_loss_reached`)."""
    skipped = {
        row["follower_id"] for row in plan.rows if row["reason_code"] == Reason.MAX_DAILY_LOSS
    }
    if not skipped:
        return
    from trading.engine import alerts

    alerts.daily_loss_reached(
        master_id=plan.order.master_id,
        reached={
            f.view.id: (f.view.daily_pnl, f.view.max_daily_loss)
            for f in followers
            if f.view.id in skipped
        },
        at=plan.now,
    )


# --- The transaction ---------------------------------------------------------------------------
def _order_fields(row: OrderRow) -> dict[str, Any]:
    return {
        "exchange": row.exchange,
        "token": row.token,
        "trading_symbol": row.trading_symbol,
        "side": row.side.value if row.side is not None else "",
        "quantity": max(row.quantity, 0),
        "filled_quantity": tracker.filled_of(row),
        "order_type": row.order_type.value if row.order_type is not None else "",
        "product": raw_product(row),
        "complexity": row_complexity(row),
        "validity": row.validity.value if row.validity is not None else "DAY",
        "price": row.price if row.price else None,
        "trigger_price": row.trigger_price if row.trigger_price else None,
        "average_price": row.average_price if row.average_price else None,
        "broker_status": row.raw_status[:40],
        "status": row.status.value,
        "rejection_reason": row.rejection_reason[:500],
        "tag": row.tag[:50],
        "exchange_time": row.exchange_time,
    }


def _upsert_order(
    master_id: int, row: OrderRow, *, received_at: datetime, baseline: bool, seeded: bool
) -> MasterOrder:
    fields = _order_fields(row)
    order = MasterOrder.objects.filter(master_id=master_id, broker_order_id=row.broker_order_id)
    existing = order.first()
    accepted = row.status.is_accepted or tracker.filled_of(row) > 0
    if seeded:
        fields["position_quantity"] = fields["filled_quantity"]
    if existing is None:
        created = MasterOrder(
            master_id=master_id,
            broker_order_id=row.broker_order_id,
            first_seen_at=received_at,
            baseline=baseline,
            accepted_at=_accepted_at(row, received_at) if accepted else None,
            **fields,
        )
        created.save(force_insert=True)
        return created
    # Never let an older snapshot (the other feed, the other copier) move an order back.
    fields["filled_quantity"] = max(fields["filled_quantity"], existing.filled_quantity)
    if seeded:
        fields["position_quantity"] = fields["filled_quantity"]
    else:
        fields.pop("position_quantity", None)
    final = (OrderStatus.COMPLETE, OrderStatus.CANCELLED, OrderStatus.REJECTED)
    if existing.status in final and fields["status"] not in final:
        fields["status"] = existing.status
        fields["broker_status"] = existing.broker_status
    if existing.accepted_at is None and accepted:
        fields["accepted_at"] = _accepted_at(row, received_at)
    for name, value in fields.items():
        setattr(existing, name, value)
    existing.save()
    return existing


def _accepted_at(row: OrderRow, received_at: datetime) -> datetime:
    """The broker's time of acceptance, never later than when we saw it (clock skew)."""
    when = row.order_time or row.exchange_time
    if when is None or when > received_at:
        return received_at
    return when


def _event(
    order: MasterOrder,
    spec: tracker.EventSpec,
    row: OrderRow,
    *,
    source: str,
    received_at: datetime,
    copy_mode: str,
) -> MasterOrderEvent:
    event = MasterOrderEvent(
        master_order=order,
        kind=spec.kind,
        dedupe_key=spec.dedupe_key,
        source=source,
        broker_time=spec.broker_time,
        received_at=received_at,
        quantity=max(row.quantity, 0),
        filled_quantity=tracker.filled_of(row),
        price=row.price or None,
        trigger_price=row.trigger_price or None,
        average_price=row.average_price or None,
        broker_status=row.raw_status[:40],
        raw=_plain(row.raw),
        copy_mode=copy_mode,
    )
    event.save(force_insert=True)
    return event


def _plain(raw: dict[str, Any]) -> dict[str, Any]:
    """The broker's row as JSON-safe scalars (for the record; at most 80 keys)."""
    return {
        str(k): (v if isinstance(v, str | int | float | bool) or v is None else str(v))
        for k, v in list(raw.items())[:80]
    }


def _set_outcome(event: MasterOrderEvent, outcome: str, note: str) -> None:
    MasterOrderEvent.objects.filter(pk=event.pk).update(outcome=outcome, outcome_note=note[:300])
    event.outcome, event.outcome_note = outcome, note[:300]


def _record_once(
    master: Master,
    row: OrderRow,
    *,
    source: str,
    received_at: datetime,
    quote: Decimal | None,
    baseline: bool,
    seeded: bool,
    now: datetime,
) -> Recorded:
    known = tracker.load_known(master.pk, [row.broker_order_id]).get(row.broker_order_id)
    specs = tracker.implied_events(row, known)
    if not specs:
        return Recorded()
    order = _upsert_order(master.pk, row, received_at=received_at, baseline=baseline, seeded=seeded)
    before = master_position_before(order, PositionBook.BROKER)
    apply_master_fills(order, PositionBook.BROKER)
    result = Recorded()
    for spec in specs:
        event = _event(
            order, spec, row, source=source, received_at=received_at, copy_mode=master.copy_mode
        )
        result.event_ids.append(event.pk)
        result.kinds.append(spec.kind)
        outcome, note = _decide(
            event,
            order,
            master=master,
            before=before,
            quote=quote,
            baseline=baseline,
            now=now,
            result=result,
        )
        _set_outcome(event, outcome, note)
    _update_slippage(order)
    return result


def _decide(
    event: MasterOrderEvent,
    order: MasterOrder,
    *,
    master: Master,
    before: int,
    quote: Decimal | None,
    baseline: bool,
    now: datetime,
    result: Recorded,
) -> tuple[str, str]:
    kind = event.kind
    if baseline:
        return EventOutcome.BASELINE, (
            "In the master's order book before the copier watched the account today: "
            "recorded, not copied."
        )
    if kind == tracker.REJECTED:
        return EventOutcome.REJECTED, "The master's order was rejected: never copied."
    if kind in (tracker.MODIFIED, tracker.CANCELLED):
        handler = LIFECYCLE_HANDLERS.get(kind)
        if kind == tracker.CANCELLED and not order.accepted_at:
            return EventOutcome.NOT_ACCEPTED, "Cancelled before it was accepted: not copied."
        if handler is not None:
            recorded, outcome, note = handler(event, order, master, now)
            result.extend(recorded)
            return outcome, note
        return EventOutcome.LIFECYCLE, "Modify and cancel mirroring is not enabled."
    fills_mode = master.copy_mode == Master.CopyMode.COPY_FILLS
    copies = (kind == tracker.ACCEPTED and not fills_mode) or (
        kind in (tracker.PARTIAL, tracker.FILLED) and fills_mode
    )
    if not copies:
        return EventOutcome.RECORDED, ""
    recorded, outcome, note = plan_event(
        event, order, master=master, master_before=before, quote=quote, now=now
    )
    result.extend(recorded)
    return outcome, note


#: Issue 5 registers its handlers here: kind -> f(event, order, master, now) ->
#: (Recorded, outcome, note), called inside the decision transaction. A handler writes
#: MODIFY/CANCEL CopyTrade rows linked (CopyTrade.linked) to the PLACE rows they act on.
LIFECYCLE_HANDLERS: dict[
    str, Callable[[MasterOrderEvent, MasterOrder, Master, datetime], tuple[Recorded, str, str]]
] = {}


def _update_slippage(order: MasterOrder) -> None:
    """Slippage of the copies of this order against the master's average fill price:
    positive = worse for the follower (paid more on a buy, got less on a sell)."""
    master_avg = order.average_price
    if not master_avg:
        return
    for ct_id, side, avg in CopyTrade.objects.filter(
        event__master_order=order, average_price__isnull=False, slippage__isnull=True
    ).values_list("pk", "side", "average_price"):
        if avg is None:
            continue
        slip = (avg - master_avg) if side == "BUY" else (master_avg - avg)
        CopyTrade.objects.filter(pk=ct_id).update(slippage=slip, version=F("version") + 1)


def record_observation(
    *,
    master_id: int,
    row: OrderRow,
    source: str,
    received_at: datetime,
    quote: Decimal | None = None,
    baseline: bool = False,
    seeded: bool = False,
    now: datetime | None = None,
) -> Recorded:
    """Record one master order snapshot and decide its copies, in one transaction.

    ``baseline``: the order was in the book before the copier watched the account today
    (recorded, never copied). ``seeded``: its fills are already in the master's positions
    seeded from the broker (the first snapshot of the day).

    Idempotent: a snapshot already recorded (by this feed, the other feed or another copier)
    records nothing. Raises nothing for duplicates; other database errors propagate.
    """
    master = Master.objects.get(pk=master_id)
    for attempt in range(4):
        try:
            with transaction.atomic():
                return _record_once(
                    master,
                    row,
                    source=source,
                    received_at=received_at,
                    quote=quote,
                    baseline=baseline,
                    seeded=seeded,
                    now=now or clock.now(),
                )
        except IntegrityError:
            # Another feed or copier recorded (part of) this first: re-read and retry.
            if attempt == 3:
                raise
            logger.info(
                "master event already recorded; re-reading",
                extra={"ctx": {"master": master_id, "order": row.broker_order_id}},
            )
    return Recorded()  # pragma: no cover


def record_rows(
    *,
    master_id: int,
    rows: Iterable[OrderRow],
    source: str,
    received_at: datetime,
    quotes: dict[str, Decimal] | None = None,
    baseline: bool = False,
) -> Recorded:
    """`record_observation` for every row of a snapshot, oldest first."""
    total = Recorded()
    ordered = sorted(
        rows, key=lambda r: (r.order_time is None, r.order_time or received_at, r.broker_order_id)
    )
    for row in ordered:
        total.extend(
            record_observation(
                master_id=master_id,
                row=row,
                source=source,
                received_at=received_at,
                quote=(quotes or {}).get(row.broker_order_id),
                baseline=baseline,
            )
        )
    return total


# --- Manual copy trades ------------------------------------------------------------------------
def plan_manual_event(
    event_id: int, *, quote: Decimal | None, now: datetime | None = None
) -> Recorded:
    """Decide the copies of a manual copy trade (created by the web process, planned by the
    copier so a market order can be valued with a quote). Guarded by the event's empty
    outcome: two copiers never plan it twice."""
    now = now or clock.now()
    with transaction.atomic():
        claimed = MasterOrderEvent.objects.filter(
            pk=event_id, outcome="", master_order__manual=True
        ).update(outcome=EventOutcome.COPIED)
        if not claimed:
            return Recorded()
        event = MasterOrderEvent.objects.select_related("master_order__master").get(pk=event_id)
        order = event.master_order
        master = order.master
        before = master_position_before(order, PositionBook.MANUAL)
        # A manual order never reaches the master's account: it counts as filled at once in
        # the manual book, so a later manual order in the other direction is an exit.
        apply_master_fills(order, PositionBook.MANUAL)
        result = Recorded(event_ids=[event.pk], kinds=[event.kind])
        recorded, outcome, note = plan_event(
            event, order, master=master, master_before=before, quote=quote, now=now
        )
        result.extend(recorded)
        _set_outcome(event, outcome, note)
        return result


def unplanned_manual_events(limit: int = 50) -> list[tuple[int, int, bool]]:
    """Manual events waiting for the copier: (event id, master id, needs a quote)."""
    rows = (
        MasterOrderEvent.objects.filter(
            outcome="", source=EventSource.MANUAL, master_order__manual=True
        )
        .order_by("pk")
        .values_list("pk", "master_order__master_id", "master_order__order_type")[:limit]
    )
    return [(pk, master_id, order_type == "MARKET") for pk, master_id, order_type in rows]


def waiting_exit_ids(now: datetime, limit: int = 500) -> list[int]:
    """PENDING rows whose next attempt is due (waiting exits, retries)."""
    return list(
        CopyTrade.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def fresh_pending_ids(older_than: datetime, limit: int = 1000) -> list[int]:
    """PENDING rows nobody claimed (their planner died, or another copier planned them)."""
    return list(
        CopyTrade.objects.filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=older_than),
            status=Status.PENDING,
            decided_at__lte=older_than,
        )
        .order_by("-intent", "pk")  # "exit" before "entry": exits go first
        .values_list("pk", flat=True)[:limit]
    )
