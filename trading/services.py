"""Engine-facing writes: what pages, the JSON API and commands call to act on copying.

`create_manual_copy(...)` — a master's manual copy trade (from the seed, for testing): an
order that is copied to every active follower exactly as one of the master's own orders
would be (sizing, entry checks, exits, freeze legs, exactly once), without any order in the
master's own account, marked manual. It records the request (a manual `MasterOrder` and its
``accepted`` event, source ``manual``) in one transaction with an audit row; the copier
decides the followers' copy trades within a fraction of a second (it may need a quote to
value a market order, which the web process never fetches) and sends them. Read the result
with `manual_copy_trades(order)` below — or the copy trades of
``order.events.first()``.

`cancel_copy_trade(...)` — a person cancels a copy trade that is still PENDING, by a
conditional update that loses cleanly to the copier's claim (DESIGN.md "Statuses"): a
PENDING -> CANCELLED UPDATE (row count checked) in one transaction with its transition row
and its audit row. It races the copier's claim (PENDING -> SENDING, also conditional):
whichever commits first wins, the other changes no row. A cancel that lost says so; it never
touches a copy trade that is being or has been sent.
"""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import Master, User
from copytrade.lib import clock
from trading.audit import record_audit
from trading.models import (
    Complexity,
    CopyTrade,
    CopyTradeTransition,
    EventKind,
    EventSource,
    Exchange,
    Instrument,
    MasterOrder,
    MasterOrderEvent,
    OrderType,
    Product,
    Side,
    Validity,
)

# Error messages (tests and the API match these constants).
UNKNOWN_EXCHANGE = "Choose an exchange: NSE, BSE, NFO, BFO, MCX, CDS or BCD."
UNKNOWN_SYMBOL = "No instrument {symbol} on {exchange} in today's contract master."
BAD_SIDE = "Side must be BUY or SELL."
BAD_QUANTITY = "Quantity must be a whole number of at least 1."
NOT_WHOLE_LOTS = "Quantity must be a whole number of lots of {lot} (e.g. {example})."
BAD_ORDER_TYPE = "Order type must be MARKET, LIMIT, SL or SLM."
BAD_PRODUCT = "Product must be MIS, CNC or NRML."
PRICE_REQUIRED = "A {order_type} order needs a price above 0."
TRIGGER_REQUIRED = "A {order_type} order needs a trigger price above 0."
NOT_ON_TICK = "{what} must be a multiple of the tick size {tick}."
BAD_NUMBER = "Enter a number."
NOT_A_MASTER = "Only a master can place a manual copy trade."


def _decimal(value: Any, field: str, errors: dict[str, list[str]]) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        errors.setdefault(field, []).append(BAD_NUMBER)
        return None
    if not number.is_finite():
        errors.setdefault(field, []).append(BAD_NUMBER)
        return None
    return number


def _find_instrument(exchange: str, symbol: str) -> Instrument | None:
    symbol = symbol.strip()
    if not symbol:
        return None
    rows = Instrument.objects.filter(exchange=exchange)
    found = (
        rows.filter(trading_symbol__iexact=symbol).order_by("-refreshed_on").first()
        or rows.filter(token=symbol).first()
    )
    if found is None and exchange in ("NSE", "BSE"):
        found = rows.filter(trading_symbol__iexact=f"{symbol}-EQ").order_by("-refreshed_on").first()
    return found


def create_manual_copy(
    *,
    master: Master,
    actor: User,
    exchange: str,
    symbol: str,
    side: str,
    quantity: int | str,
    order_type: str,
    product: str,
    price: Decimal | str | None = None,
    trigger_price: Decimal | str | None = None,
    request: HttpRequest | None = None,
) -> MasterOrder:
    """Record a manual copy trade for the copier to fan out; return its MasterOrder.

    Raises ValidationError with a message per field (``exchange``, ``symbol``, ``side``,
    ``quantity``, ``order_type``, ``product``, ``price``, ``trigger_price``); nothing is
    saved then.
    """
    errors: dict[str, list[str]] = {}
    exchange = (exchange or "").strip().upper()
    side = (side or "").strip().upper()
    order_type = (order_type or "").strip().upper()
    product = (product or "").strip().upper()
    if getattr(actor, "role", None) != User.Role.MASTER or getattr(actor, "master", None) != master:
        raise ValidationError(NOT_A_MASTER)
    if exchange not in Exchange.values:
        errors.setdefault("exchange", []).append(UNKNOWN_EXCHANGE)
    if side not in Side.values:
        errors.setdefault("side", []).append(BAD_SIDE)
    if order_type not in OrderType.values:
        errors.setdefault("order_type", []).append(BAD_ORDER_TYPE)
    if product not in Product.values:
        errors.setdefault("product", []).append(BAD_PRODUCT)
    try:
        qty = int(str(quantity).strip())
        if qty < 1 or str(quantity).strip() != str(qty):
            raise ValueError
    except (TypeError, ValueError):
        errors.setdefault("quantity", []).append(BAD_QUANTITY)
        qty = 0
    price_value = _decimal(price, "price", errors)
    trigger_value = _decimal(trigger_price, "trigger_price", errors)
    instrument = None
    if "exchange" not in errors:
        instrument = _find_instrument(exchange, symbol or "")
        if instrument is None:
            errors.setdefault("symbol", []).append(
                UNKNOWN_SYMBOL.format(symbol=(symbol or "").strip() or "(empty)", exchange=exchange)
            )
    if instrument is not None and qty and qty % max(instrument.lot_size, 1):
        lot = instrument.lot_size
        errors.setdefault("quantity", []).append(
            NOT_WHOLE_LOTS.format(lot=lot, example=lot * max(qty // lot, 1))
        )
    if order_type in ("LIMIT", "SL") and (price_value is None or price_value <= 0):
        errors.setdefault("price", []).append(PRICE_REQUIRED.format(order_type=order_type))
    if order_type in ("SL", "SLM") and (trigger_value is None or trigger_value <= 0):
        errors.setdefault("trigger_price", []).append(
            TRIGGER_REQUIRED.format(order_type=order_type)
        )
    if instrument is not None and instrument.tick_size:
        for name, value in (("price", price_value), ("trigger_price", trigger_value)):
            if value is not None and value > 0 and value % instrument.tick_size:
                what = "Price" if name == "price" else "Trigger price"
                errors.setdefault(name, []).append(
                    NOT_ON_TICK.format(what=what, tick=instrument.tick_size.normalize())
                )
    if errors:
        raise ValidationError(errors)
    assert instrument is not None
    now = clock.now()
    keep_price = order_type in ("LIMIT", "SL")
    keep_trigger = order_type in ("SL", "SLM")
    with transaction.atomic():
        order = MasterOrder(
            master=master,
            broker_order_id=f"MANUAL-{uuid.uuid4().hex[:16].upper()}",
            manual=True,
            exchange=exchange,
            token=instrument.token,
            trading_symbol=instrument.trading_symbol,
            side=side,
            quantity=qty,
            # A manual order never reaches the master's account: the manual position book
            # counts it as filled at once (trading.engine.decide.plan_manual_event).
            filled_quantity=qty,
            order_type=order_type,
            product=product,
            complexity=Complexity.REGULAR,
            validity=Validity.DAY,
            price=price_value if keep_price else None,
            trigger_price=trigger_value if keep_trigger else None,
            broker_status="manual",
            status="OPEN",
            accepted_at=now,
            first_seen_at=now,
            requested_by=actor,
        )
        order.full_clean()
        order.save()
        MasterOrderEvent.objects.create(
            master_order=order,
            kind=EventKind.ACCEPTED,
            dedupe_key="",
            source=EventSource.MANUAL,
            broker_time=now,
            received_at=now,
            quantity=qty,
            filled_quantity=0,
            price=order.price,
            trigger_price=order.trigger_price,
            broker_status="manual",
            copy_mode=master.copy_mode,
        )
        record_audit(
            actor=actor,
            action="copy_trade.manual",
            target=order,
            master=master,
            after={
                "exchange": exchange,
                "symbol": instrument.trading_symbol,
                "side": side,
                "quantity": qty,
                "order_type": order_type,
                "product": product,
                "price": str(order.price) if order.price is not None else None,
                "trigger_price": (
                    str(order.trigger_price) if order.trigger_price is not None else None
                ),
            },
            request=request,
        )
    return order


def manual_copy_trades(order: MasterOrder) -> QuerySet[CopyTrade]:
    """The copy trades decided for a manual copy trade (empty until the copier planned it)."""
    return (
        CopyTrade.objects.filter(event__master_order=order)
        .select_related("follower")
        .order_by("follower__display_name", "leg")
    )


# --- Cancelling a PENDING copy trade (people) ---------------------------------------------------
CANCELLED_REASON = "Cancelled by {who} before it was sent."
NOT_PENDING = (
    "This copy trade is {status} and can no longer be cancelled: only a PENDING copy trade "
    "(not yet claimed by the copier) can be."
)
CANCEL_REASON_CODE = "cancelled_by_person"


class CopyTradeNotPending(Exception):
    def __init__(self, status: str) -> None:
        self.status = status
        super().__init__(NOT_PENDING.format(status=status))


def cancel_copy_trade(
    *, copy_trade_id: int, actor: User, request: HttpRequest | None = None
) -> CopyTrade:
    """Cancel a PENDING copy trade. Access is the caller's check (trading.selectors).

    Raises CopyTradeNotPending when the copier claimed it first (or it was never pending),
    and CopyTrade.DoesNotExist for an unknown id.
    """
    who = actor.get_username()
    with transaction.atomic():
        now = timezone.now()
        changed = CopyTrade.objects.filter(
            pk=copy_trade_id, status=CopyTrade.Status.PENDING
        ).update(
            status=CopyTrade.Status.CANCELLED,
            reason_code=CANCEL_REASON_CODE,
            reason=CANCELLED_REASON.format(who=who),
            updated_at=now,
            version=F("version") + 1,
        )
        trade = CopyTrade.objects.select_related("master").get(pk=copy_trade_id)
        if changed != 1:
            raise CopyTradeNotPending(trade.status)
        CopyTradeTransition.objects.create(
            copy_trade=trade,
            from_status=CopyTrade.Status.PENDING,
            to_status=CopyTrade.Status.CANCELLED,
            at=now,
            note=f"cancelled by {who}"[:500],
        )
        record_audit(
            actor=actor,
            action="copy_trade.cancel",
            target=trade,
            master=trade.master,
            before={"status": CopyTrade.Status.PENDING},
            after={"status": CopyTrade.Status.CANCELLED},
            request=request,
        )
    return trade


# --- Missed exits after a feed loss (trading.engine.lifecycle.feedloss) ------------------------
NO_OPEN_PROPOSALS = "There are no missed exits waiting for this order (already decided?)."
PROPOSALS_SENT = "Sent {count} missed exit{s}: the copier sends them now."
PROPOSALS_NOTHING = " {count} had nothing left to exit."
PROPOSALS_DISMISSED = "Dismissed {count} missed exit{s}: nothing is sent."


class NoOpenProposals(Exception):
    def __init__(self) -> None:
        super().__init__(NO_OPEN_PROPOSALS)


def send_exit_proposals(
    *, master: Master, event_id: int, actor: User, request: HttpRequest | None = None
) -> str:
    """Send the missed exits proposed for one of the master's orders (every follower's at
    once): new EXIT copies sized from each follower's ledger, sent by the copier. Audited.
    Raises NoOpenProposals when none is open (already decided, or not this master's)."""
    from trading.engine.lifecycle import feedloss

    with transaction.atomic():
        decided = feedloss.send_proposals(
            master=master, event_id=event_id, actor=actor, now=timezone.now()
        )
        if not decided.proposals:
            raise NoOpenProposals
        record_audit(
            actor=actor,
            action="exit_proposal.send",
            master=master,
            after={
                "event": event_id,
                "proposals": decided.proposals,
                "copy_trades": decided.copy_trade_ids,
                "nothing_to_exit": decided.nothing,
            },
            request=request,
        )
    sent = len(decided.proposals) - len(decided.nothing)
    text = PROPOSALS_SENT.format(count=sent, s="" if sent == 1 else "s")
    if decided.nothing:
        text += PROPOSALS_NOTHING.format(count=len(decided.nothing))
    return text


def dismiss_exit_proposals(
    *, master: Master, event_id: int, actor: User, request: HttpRequest | None = None
) -> str:
    """Dismiss the missed exits proposed for one of the master's orders. Audited."""
    from trading.engine.lifecycle import feedloss

    with transaction.atomic():
        decided = feedloss.dismiss_proposals(
            master=master, event_id=event_id, actor=actor, now=timezone.now()
        )
        if not decided.proposals:
            raise NoOpenProposals
        record_audit(
            actor=actor,
            action="exit_proposal.dismiss",
            master=master,
            after={"event": event_id, "proposals": decided.proposals},
            request=request,
        )
    count = len(decided.proposals)
    return PROPOSALS_DISMISSED.format(count=count, s="" if count == 1 else "s")


# --- Reconciliation policy (trading.engine.lifecycle.reconcile) ---------------------------------
POLICY_SAVED = {
    "report": "Drift is reported only: nothing is closed for you.",
    "close": (
        "Drift is reported, and positions you no longer hold are closed in followers' "
        "accounts (never more than they still hold from your copies; nothing is opened)."
    ),
}


def set_reconcile_policy(
    *, master: Master, policy: str, actor: User, request: HttpRequest | None = None
) -> str:
    """Set the master's reconciliation policy (report | close). Audited."""
    with transaction.atomic():
        row = Master.objects.select_for_update().get(pk=master.pk)
        before = row.reconcile_policy
        row.reconcile_policy = policy
        row.full_clean()
        row.save(update_fields=["reconcile_policy"])
        if before != policy:
            record_audit(
                actor=actor,
                action="master.reconcile_policy",
                target=row,
                master=row,
                before={"reconcile_policy": before},
                after={"reconcile_policy": policy},
                request=request,
            )
    master.reconcile_policy = policy
    return POLICY_SAVED[policy]


# --- Readiness: "check now" ---------------------------------------------------------------------
READINESS_REQUESTED = "Readiness check requested: the copier runs it within a few seconds."
READINESS_WAITING = "A readiness check is already waiting for the copier."


def request_readiness_check(
    *, master: Master, actor: User, request: HttpRequest | None = None
) -> str:
    """Ask the copier for a readiness check of the master's followers now (it asks the
    broker; the web process never does). One waiting request per master. Audited."""
    from django.db import IntegrityError

    from trading.models import ReadinessRequest

    try:
        with transaction.atomic():
            row = ReadinessRequest.objects.create(master=master, requested_by=actor)
            record_audit(
                actor=actor,
                action="readiness.request",
                target=row,
                master=master,
                after={"requested_at": row.requested_at.isoformat()},
                request=request,
            )
    except IntegrityError:
        return READINESS_WAITING
    return READINESS_REQUESTED
