"""Sending copy trades exactly once: claim → build the order → send → classify → record.

    claim(ids, claimer=..., now=...)  -> ClaimResult     one transaction, no network
    build_request(claimed)            -> OrderRequest    pure
    classify(claimed, ack | error)    -> Outcome         pure
    record_outcomes([outcome, ...])   -> None            one transaction
    resolve_by_tag(claimed, lookup)   -> Outcome         the ambiguous path (order book by tag)

`send_copy_trade(copy_trade_id)` runs the whole path synchronously for one row (a plain
function of a CopyTrade id: what a Celery worker would call, DESIGN.md's scale path). The
copier's asynchronous fan-out (`trading.engine.runner`) runs the same steps for many rows at
once through the aiohttp client, the rate governor and one database thread.

The rules (DESIGN.md "Copy semantics"):

* A row is sent only by whoever moved it PENDING → SENDING (a conditional UPDATE; the claim
  token in ``claimed_by`` says which rows this claim got). Two copiers never both send a row.
* Before claiming an entry: past ``master_accepted_at + COPIER_STALENESS_SECONDS`` it is
  EXPIRED, never sent late. Exits never expire; an exit is claimed only if the position
  ledger covers it (`ledger.reserve_exit`); while the follower's own entry is still filling
  it waits, otherwise it is cut to what the ledger holds (never oversold).
* Outcomes: acknowledged → SUCCESS; refused → FAILED (the broker's code and text); the
  request provably never left (connect failure, 429) → back to PENDING with a backoff while
  the entry is fresh, else EXPIRED; an expired session (the copier's re-login failed) →
  SKIPPED ``needs_login`` (an exit waits for the login instead); **ambiguous** (a timeout
  or reset after the request was written) → the tag is looked up in the follower's order
  book several times over about ten seconds: found → SUCCESS (or FAILED if the broker
  rejected it), absent → UNKNOWN and an alert, never resent.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from copytrade.lib import clock
from trading.brokers.aliceblue.errors import (
    AmbiguousOrder,
    BrokerError,
    BrokerUnavailable,
    NeedsDailyLogin,
    RateLimited,
    Rejected,
    SessionExpired,
)
from trading.brokers.aliceblue.mapping import UnknownInstrument
from trading.brokers.aliceblue.types import (
    Complexity,
    OrderAck,
    OrderRequest,
    OrderRow,
    OrderStatus,
    OrderType,
    Product,
    Side,
    Validity,
)
from trading.engine import alerts, ledger, tags, transitions
from trading.engine.reasons import EXIT_WAITING_FILLS, EXIT_WAITING_LOGIN, Reason, message
from trading.models import CopyTrade

logger = logging.getLogger("trading.engine.sender")

Status = CopyTrade.Status
ENTRY = CopyTrade.Intent.ENTRY.value
EXIT = CopyTrade.Intent.EXIT.value
#: How long an exit waits for the follower's own entry order to fill before it is cut to
#: what the ledger holds.
EXIT_WAIT_FOR_FILLS = timedelta(seconds=60)
#: How long an exit keeps retrying a broker that cannot be reached before it FAILs loudly.
EXIT_RETRY_WINDOW = timedelta(minutes=10)
RETRY_BACKOFF = (0.25, 0.5, 1.0, 2.0, 4.0)
#: How often a waiting exit's reason (no session, market closed) is looked at again.
WAITING_RECHECK = timedelta(seconds=5)


def staleness() -> timedelta:
    return timedelta(seconds=int(settings.COPIER_STALENESS_SECONDS))


def lookup_schedule() -> tuple[float, ...]:
    """Seconds after an ambiguous send at which the order book is searched for the tag."""
    total = float(getattr(settings, "COPIER_AMBIGUOUS_LOOKUP_SECONDS", 10.0))
    return tuple(round(total * f, 3) for f in (0.05, 0.15, 0.3, 0.5, 0.75, 1.0))


def new_claimer(run_id: str) -> str:
    """A claim token: the copier run, then a unique suffix (``claimed_by`` holds it)."""
    return f"{run_id}/{uuid.uuid4().hex[:10]}"


# --- Claiming ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claimed:
    """A row this claim owns (SENDING), with everything needed to send it."""

    id: int
    tag: str
    master_id: int
    follower_id: int
    account_id: int | None
    intent: str
    exchange: str
    token: str
    trading_symbol: str
    side: str
    quantity: int
    order_type: str
    product: str
    complexity: str
    validity: str
    price: Decimal | None
    trigger_price: Decimal | None
    master_accepted_at: datetime | None
    decided_at: datetime
    attempts: int
    claimed_by: str
    #: place | modify | cancel; modify/cancel act on the linked PLACE copy's broker order.
    action: str = "place"
    linked_broker_order_id: str = ""
    #: The PLACE copy a MODIFY/CANCEL acts on (its id and broker tag).
    linked_id: int | None = None
    linked_tag: str = ""

    @property
    def deadline(self) -> datetime | None:
        """Entries only: the last moment they may be sent."""
        if self.intent != ENTRY or self.master_accepted_at is None:
            return None
        return self.master_accepted_at + staleness()


@dataclass
class ClaimResult:
    claimed: list[Claimed] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


_CLAIM_FIELDS = (
    "pk",
    "tag",
    "master_id",
    "follower_id",
    "follower__user__broker_account__pk",
    "intent",
    "exchange",
    "token",
    "trading_symbol",
    "side",
    "quantity",
    "order_type",
    "product",
    "complexity",
    "validity",
    "price",
    "trigger_price",
    "master_accepted_at",
    "decided_at",
    "attempts",
    "next_attempt_at",
    "lot_size",
    "sizing_note",
    "reason_code",
    "action",
    "linked_id",
    "linked__broker_order_id",
    "linked__tag",
)


def _claimed(values: dict[str, Any], claimer: str, quantity: int | None = None) -> Claimed:
    return Claimed(
        id=values["pk"],
        tag=values["tag"],
        master_id=values["master_id"],
        follower_id=values["follower_id"],
        account_id=values["follower__user__broker_account__pk"],
        intent=values["intent"],
        exchange=values["exchange"],
        token=values["token"],
        trading_symbol=values["trading_symbol"],
        side=values["side"],
        quantity=quantity if quantity is not None else values["quantity"],
        order_type=values["order_type"],
        product=values["product"],
        complexity=values["complexity"],
        validity=values["validity"],
        price=values["price"],
        trigger_price=values["trigger_price"],
        master_accepted_at=values["master_accepted_at"],
        decided_at=values["decided_at"],
        attempts=values["attempts"] + 1,
        claimed_by=claimer,
        action=values["action"],
        linked_broker_order_id=values["linked__broker_order_id"] or "",
        linked_id=values["linked_id"],
        linked_tag=values["linked__tag"] or "",
    )


#: How a claimed MODIFY or CANCEL copy is sent (the lifecycle engine, issue 5, registers
#: them: action -> async f(client, claimed) -> OrderAck, and the same in SYNC_ACTION_SENDERS
#: for `send_copy_trade`). The shared path does everything else: claim, staleness, governor,
#: classification of the answer, ambiguity, recording. An action without a sender here is
#: never sent as something else: it FAILs with a clear reason.
ACTION_SENDERS: dict[str, Callable[[Any, Claimed], Awaitable[OrderAck]]] = {}
SYNC_ACTION_SENDERS: dict[str, Callable[[Any, Claimed], OrderAck]] = {}
NO_ACTION_SENDER = "Sending {action} copies is not enabled in this version."
ACTION_WAITING_LOGIN = "Waiting: the follower's broker account needs today's login."
#: How PENDING MODIFY/CANCEL rows are claimed: action -> f(rows, claimer=, now=) -> one
#: Claimed (now SENDING) | "deferred" | "skipped" | "lost" per row, in order (inside
#: `claim`'s transaction; the lifecycle registers it: it waits for the linked order's
#: acknowledgement, settles rows that have nothing left to act on). Without one the rows
#: are claimed as they are.
ACTION_CLAIMS: dict[str, Callable[..., list[Claimed | str]]] = {}
#: After a MODIFY/CANCEL row's outcome is written (same transaction): action ->
#: f(outcome, from_status, now) (the lifecycle applies a modification to its linked row).
ACTION_RECORDED: dict[str, Callable[[Outcome, str, datetime], None]] = {}
#: An ambiguous MODIFY/CANCEL looked up in the follower's order book: action ->
#: f(claimed, rows, now=, sent_at=) -> Outcome | None (None: not settled yet, look again).
ACTION_RESOLVERS: dict[str, Callable[..., Outcome | None]] = {}


def claim(ids: Sequence[int], *, claimer: str, now: datetime | None = None) -> ClaimResult:
    """Claim PENDING rows (entries and exits) in one transaction; return what this claim got.

    Stale entries become EXPIRED here. Exits reserve their quantity in the position ledger;
    an exit the ledger cannot cover waits (the follower's entry is still filling) or is cut
    to what the ledger holds (SKIPPED ``nothing_to_exit`` when that is nothing).
    """
    now = now or clock.now()
    result = ClaimResult()
    if not ids:
        return result
    with transaction.atomic():
        rows = list(
            CopyTrade.objects.filter(pk__in=list(ids), status=Status.PENDING).values(*_CLAIM_FIELDS)
        )
        due = [r for r in rows if r["next_attempt_at"] is None or r["next_attempt_at"] <= now]
        cutoff = now - staleness()
        actions = [r for r in due if r["action"] != CopyTrade.Action.PLACE]
        due = [r for r in due if r["action"] == CopyTrade.Action.PLACE]
        actions = [r for r in actions if not _still_waiting(r, now)]
        for outcome, values in _claim_actions(actions, claimer=claimer, now=now):
            if isinstance(outcome, Claimed):
                result.claimed.append(outcome)
            elif outcome == "deferred":
                result.deferred.append(values["pk"])
            elif outcome == "skipped":
                result.skipped.append(values["pk"])
        stale = [
            r["pk"]
            for r in due
            if r["intent"] == ENTRY
            and r["master_accepted_at"] is not None
            and r["master_accepted_at"] < cutoff
        ]
        if stale:
            result.expired = _bulk_move(
                stale,
                to=Status.EXPIRED,
                claimer=claimer,
                now=now,
                note=message(Reason.STALE, seconds=int(staleness().total_seconds())),
                extra={
                    "reason_code": Reason.STALE.value,
                    "reason": message(Reason.STALE, seconds=int(staleness().total_seconds())),
                },
            )
        stale_set = set(stale)
        entries = [r for r in due if r["intent"] == ENTRY and r["pk"] not in stale_set]
        exits = [r for r in due if r["intent"] == EXIT]
        exits = [r for r in exits if not _still_waiting(r, now)]
        for values in exits:
            outcome = _claim_exit(values, claimer=claimer, now=now)
            if isinstance(outcome, Claimed):
                result.claimed.append(outcome)
            elif outcome == "deferred":
                result.deferred.append(values["pk"])
            elif outcome == "skipped":
                result.skipped.append(values["pk"])
        if entries:
            got = set(
                _bulk_move(
                    [r["pk"] for r in entries],
                    to=Status.SENDING,
                    claimer=claimer,
                    now=now,
                    note="claimed",
                    extra={"claimed_at": now, "attempts": F("attempts") + 1},
                )
            )
            result.claimed += [_claimed(r, claimer) for r in entries if r["pk"] in got]
    return result


def claim_planned(
    planned: dict[int, dict[str, Any]], *, claimer: str, now: datetime | None = None
) -> ClaimResult:
    """`claim` for rows this process has just decided (their values in memory): the entries
    are claimed with one UPDATE per event and one read of the ids it got — no read-back of
    the rows. Exits, and anything not plainly fresh, take the full path of `claim`."""
    now = now or clock.now()
    result = ClaimResult()
    cutoff = now - staleness()
    fresh = {
        pk: row
        for pk, row in planned.items()
        if row["intent"] == ENTRY
        and row.get("action", CopyTrade.Action.PLACE) == CopyTrade.Action.PLACE
        and row["next_attempt_at"] is None
        and (row["master_accepted_at"] is None or row["master_accepted_at"] >= cutoff)
    }
    others = [pk for pk in planned if pk not in fresh]
    if fresh:
        events = sorted({row["event_id"] for row in fresh.values()})
        with transaction.atomic():
            CopyTrade.objects.filter(
                event_id__in=events,
                intent=ENTRY,
                action=CopyTrade.Action.PLACE,
                status=Status.PENDING,
                next_attempt_at__isnull=True,
                pk__gte=min(fresh),
                pk__lte=max(fresh),
            ).update(
                status=Status.SENDING,
                claimed_by=claimer,
                claimed_at=now,
                attempts=F("attempts") + 1,
                version=F("version") + 1,
                updated_at=now,
            )
            got = [
                pk
                for pk in CopyTrade.objects.filter(
                    event_id__in=events, claimed_by=claimer, status=Status.SENDING
                ).values_list("pk", flat=True)
                if pk in fresh
            ]
            transitions.record([(pk, Status.PENDING, Status.SENDING, "claimed") for pk in got], now)
        for pk in got:
            row = fresh[pk]
            result.claimed.append(
                Claimed(
                    id=pk,
                    tag=row["tag"],
                    master_id=row["master_id"],
                    follower_id=row["follower_id"],
                    account_id=row["_account_id"],
                    intent=row["intent"],
                    exchange=row["exchange"],
                    token=row["token"],
                    trading_symbol=row["trading_symbol"],
                    side=row["side"],
                    quantity=row["quantity"],
                    order_type=row["order_type"],
                    product=row["product"],
                    complexity=row["complexity"],
                    validity=row["validity"],
                    price=row["price"],
                    trigger_price=row["trigger_price"],
                    master_accepted_at=row["master_accepted_at"],
                    decided_at=row["decided_at"],
                    attempts=1,
                    claimed_by=claimer,
                )
            )
    if others:
        rest = claim(others, claimer=claimer, now=now)
        result.claimed = rest.claimed + result.claimed  # exits first
        result.expired, result.deferred, result.skipped = rest.expired, rest.deferred, rest.skipped
    return result


def _bulk_move(
    ids: list[int], *, to: str, claimer: str, now: datetime, note: str, extra: dict[str, Any]
) -> list[int]:
    """PENDING → ``to`` for the rows still PENDING; returns the ids this call moved."""
    CopyTrade.objects.filter(pk__in=ids, status=Status.PENDING).update(
        status=to,
        claimed_by=claimer,
        version=F("version") + 1,
        updated_at=now,
        **extra,
    )
    moved = list(
        CopyTrade.objects.filter(pk__in=ids, status=to, claimed_by=claimer).values_list(
            "pk", flat=True
        )
    )
    transitions.record([(pk, Status.PENDING, to, note) for pk in moved], now)
    return moved


def _still_waiting(values: dict[str, Any], now: datetime) -> bool:
    """A waiting exit (no session, market closed) whose reason still holds: look again later,
    quietly (no claim, no transition)."""
    reason = values["reason_code"]
    if reason == Reason.NEEDS_LOGIN:
        from trading.brokers import sessions
        from trading.models import BrokerSession

        ready = BrokerSession.objects.filter(
            account_id=values["follower__user__broker_account__pk"],
            state=BrokerSession.State.READY,
            trading_day=sessions.trading_day(),
        ).exists()
        blocked = not ready
    elif reason == Reason.MARKET_CLOSED:
        from copytrade.lib import calendar

        status = calendar.market_phase(
            values["exchange"], now, round_the_clock=calendar.round_the_clock_from_settings()
        )
        blocked = status.phase != calendar.Phase.OPEN
    else:
        return False
    if blocked:
        CopyTrade.objects.filter(pk=values["pk"], status=Status.PENDING).update(
            next_attempt_at=now + WAITING_RECHECK
        )
    return blocked


def _claim_actions(
    rows: list[dict[str, Any]], *, claimer: str, now: datetime
) -> list[tuple[Claimed | str, dict[str, Any]]]:
    """MODIFY/CANCEL rows: the lifecycle's claim (`ACTION_CLAIMS`), else claimed as they are
    (then sent only if a sender is registered; never as a new order)."""
    by_action: dict[str, list[dict[str, Any]]] = {}
    for values in rows:
        by_action.setdefault(values["action"], []).append(values)
    out: list[tuple[Claimed | str, dict[str, Any]]] = []
    for action, group in by_action.items():
        gate = ACTION_CLAIMS.get(action)
        if gate is not None:
            out += list(zip(gate(group, claimer=claimer, now=now), group, strict=True))
            continue
        moved = set(
            _bulk_move(
                [v["pk"] for v in group],
                to=Status.SENDING,
                claimer=claimer,
                now=now,
                note="claimed",
                extra={"claimed_at": now, "attempts": F("attempts") + 1},
            )
        )
        out += [(_claimed(v, claimer) if v["pk"] in moved else "lost", v) for v in group]
    return out


def _claim_exit(values: dict[str, Any], *, claimer: str, now: datetime) -> Claimed | str:
    pk = values["pk"]
    took = CopyTrade.objects.filter(pk=pk, status=Status.PENDING).update(
        status=Status.SENDING,
        claimed_by=claimer,
        claimed_at=now,
        attempts=F("attempts") + 1,
        version=F("version") + 1,
        updated_at=now,
        reason_code="",
        reason="",
    )
    if not took:
        return "lost"
    ct = CopyTrade(
        pk=pk,
        master_id=values["master_id"],
        follower_id=values["follower_id"],
        exchange=values["exchange"],
        token=values["token"],
        product=values["product"],
        side=values["side"],
        trading_symbol=values["trading_symbol"],
    )
    quantity = values["quantity"]
    if ledger.reserve_exit(ct, quantity):
        transitions.record([(pk, Status.PENDING, Status.SENDING, "claimed")], now)
        return _claimed(values, claimer)
    # The ledger does not cover it: wait for the follower's entry to fill, or cut it down.
    if _entry_filling(values) and now - values["decided_at"] < EXIT_WAIT_FOR_FILLS:
        CopyTrade.objects.filter(pk=pk).update(
            status=Status.PENDING,
            claimed_by="",
            claimed_at=None,
            attempts=F("attempts") - 1,
            next_attempt_at=now + timedelta(milliseconds=500),
            reason=EXIT_WAITING_FILLS,
        )
        return "deferred"
    lot = max(values["lot_size"] or 1, 1)
    available = ledger.available_to_exit(ct) // lot * lot
    if available > 0 and ledger.reserve_exit(ct, available):
        note = (
            f"{values['sizing_note']} → cut to {available}: the ledger holds only that "
            "(never oversold)"
        )[:200]
        CopyTrade.objects.filter(pk=pk).update(quantity=available, sizing_note=note)
        cut = f"claimed, cut to {available}"
        transitions.record([(pk, Status.PENDING, Status.SENDING, cut)], now)
        return _claimed(values, claimer, quantity=available)
    text = message(Reason.NOTHING_TO_EXIT)
    CopyTrade.objects.filter(pk=pk).update(
        status=Status.SKIPPED,
        claimed_by=claimer,
        reason_code=Reason.NOTHING_TO_EXIT.value,
        reason=text,
    )
    transitions.record([(pk, Status.PENDING, Status.SKIPPED, text)], now)
    return "skipped"


def _entry_filling(values: dict[str, Any]) -> bool:
    """Whether the follower has an entry in this instrument still working or being sent."""
    return (
        CopyTrade.objects.filter(
            master_id=values["master_id"],
            follower_id=values["follower_id"],
            exchange=values["exchange"],
            token=values["token"],
            product=values["product"],
            intent=ENTRY,
            action=CopyTrade.Action.PLACE,
            status__in=(Status.PENDING, Status.SENDING, Status.SUCCESS, Status.UNKNOWN),
            broker_final=False,
            quantity__gt=F("ledger_quantity"),
        )
        .exclude(side=values["side"])
        .exists()
    )


# --- Building and classifying ---------------------------------------------------------------------
def build_request(c: Claimed) -> OrderRequest:
    """The broker order for a claimed PLACE row (ValueError for an order that cannot exist)."""
    if c.action != CopyTrade.Action.PLACE:
        raise ValueError(f"a {c.action} copy is not a new order")
    return OrderRequest(
        exchange=c.exchange,
        token=c.token,
        trading_symbol=c.trading_symbol,
        side=Side(c.side),
        quantity=c.quantity,
        order_type=OrderType(c.order_type),
        product=Product(c.product),
        price=c.price if c.order_type in ("LIMIT", "SL") else None,
        trigger_price=c.trigger_price if c.order_type in ("SL", "SLM") else None,
        validity=Validity(c.validity or "DAY"),
        complexity=Complexity(c.complexity or "REGULAR"),
        tag=c.tag,
    )


@dataclass(frozen=True)
class Outcome:
    """What happened to one claimed row; `record_outcomes` writes it."""

    claimed: Claimed
    status: str  # SUCCESS | FAILED | UNKNOWN | EXPIRED | PENDING (retry) | "ambiguous"
    reason: Reason | None = None
    text: str = ""
    broker_order_id: str = ""
    error_code: str = ""
    error_message: str = ""
    sent_at: datetime | None = None
    acknowledged_at: datetime | None = None
    retry_at: datetime | None = None
    found: OrderRow | None = None

    @property
    def ambiguous(self) -> bool:
        return self.status == "ambiguous"


def classify(
    c: Claimed,
    result: OrderAck | BaseException,
    *,
    sent_at: datetime | None,
    now: datetime,
) -> Outcome:
    """Map a send's result to an outcome (pure)."""
    if isinstance(result, OrderAck):
        return Outcome(
            c,
            Status.SUCCESS,
            broker_order_id=result.broker_order_id,
            sent_at=sent_at,
            acknowledged_at=now,
        )
    if isinstance(result, AmbiguousOrder):
        return Outcome(c, "ambiguous", text=str(result), sent_at=sent_at)
    if isinstance(result, Rejected):
        return Outcome(
            c,
            Status.FAILED,
            Reason.BROKER_REJECTED,
            message(Reason.BROKER_REJECTED, message=result.message or result.code),
            error_code=result.code[:20],
            error_message=result.message[:500],
            sent_at=sent_at,
            acknowledged_at=now,
        )
    if isinstance(result, SessionExpired | NeedsDailyLogin):
        if c.intent == EXIT or c.action != CopyTrade.Action.PLACE:
            # exits, modifications and cancellations wait for the login; they are never lost
            return Outcome(
                c,
                Status.PENDING,
                Reason.NEEDS_LOGIN,
                EXIT_WAITING_LOGIN if c.action == CopyTrade.Action.PLACE else ACTION_WAITING_LOGIN,
                retry_at=now + timedelta(seconds=5),
                sent_at=sent_at,
            )
        # the broker refused the request for want of a session (nothing was placed): the
        # entry is SKIPPED like any entry of an account that needs today's login
        return Outcome(
            c,
            Status.SKIPPED,
            Reason.NEEDS_LOGIN,
            message(Reason.SESSION_EXPIRED, message=getattr(result, "message", str(result))),
            sent_at=sent_at,
        )
    if isinstance(result, RateLimited | BrokerUnavailable):
        return _retry(c, str(result), now=now, sent_at=sent_at)
    if isinstance(result, ValueError | UnknownInstrument):
        return Outcome(
            c, Status.FAILED, Reason.INVALID_ORDER, message(Reason.INVALID_ORDER, message=result)
        )
    if isinstance(result, BrokerError):
        return Outcome(c, "ambiguous", text=str(result), sent_at=sent_at)
    # Anything else happened somewhere between building and the answer: it may have been
    # sent, so it is ambiguous (looked up by tag, never resent).
    return Outcome(c, "ambiguous", text=f"{type(result).__name__}: {result}", sent_at=sent_at)


def expired(c: Claimed, why: str) -> Outcome:
    """An entry past its staleness deadline before it could be sent (never sent late)."""
    text = message(Reason.STALE, seconds=int(staleness().total_seconds()))
    return Outcome(c, Status.EXPIRED, Reason.STALE, f"{text} {why}".strip())


def _retry(c: Claimed, why: str, *, now: datetime, sent_at: datetime | None) -> Outcome:
    """The request never reached the broker: try again while it is useful."""
    delay = RETRY_BACKOFF[min(c.attempts - 1, len(RETRY_BACKOFF) - 1)]
    at = now + timedelta(seconds=delay)
    deadline = c.deadline
    if deadline is not None and at > deadline:
        return Outcome(
            c,
            Status.EXPIRED,
            Reason.BROKER_UNAVAILABLE,
            message(Reason.BROKER_UNAVAILABLE, message=why)
            + " "
            + message(Reason.STALE, seconds=int(staleness().total_seconds())),
            sent_at=sent_at,
        )
    if c.intent == EXIT and now - c.decided_at > EXIT_RETRY_WINDOW:
        return Outcome(
            c,
            Status.FAILED,
            Reason.BROKER_UNAVAILABLE,
            message(Reason.BROKER_UNAVAILABLE, message=why),
            sent_at=sent_at,
        )
    return Outcome(
        c,
        Status.PENDING,
        Reason.BROKER_UNAVAILABLE,
        message(Reason.BROKER_UNAVAILABLE, message=why),
        retry_at=at,
        sent_at=sent_at,
    )


def match_tag(rows: Iterable[OrderRow], c: Claimed) -> OrderRow | None:
    """The follower's order carrying this row's tag, if it is the order we sent."""
    found = [row for row in rows if tags.same_tag(row.tag, c.tag)]
    for row in sorted(found, key=lambda r: r.broker_order_id, reverse=True):
        if row.exchange.upper() != c.exchange.upper() or (
            row.side is not None and row.side.value != c.side
        ):
            logger.error(
                "an order carries our tag but is not our order",
                extra={"ctx": {"tag": c.tag, "order": row.broker_order_id}},
            )
            continue
        return row
    return None


def found_outcome(c: Claimed, row: OrderRow, *, now: datetime, sent_at: datetime | None) -> Outcome:
    """The outcome of an ambiguous send whose tag was found in the order book."""
    if row.status == OrderStatus.REJECTED:
        return Outcome(
            c,
            Status.FAILED,
            Reason.BROKER_REJECTED,
            message(Reason.BROKER_REJECTED, message=row.rejection_reason or row.raw_status),
            broker_order_id=row.broker_order_id,
            error_message=row.rejection_reason[:500],
            sent_at=sent_at,
            acknowledged_at=now,
            found=row,
        )
    return Outcome(
        c,
        Status.SUCCESS,
        broker_order_id=row.broker_order_id,
        sent_at=sent_at,
        acknowledged_at=now,
        found=row,
        text=f"found by tag {c.tag} after an ambiguous send",
    )


def lookup_outcome(
    c: Claimed, rows: list[OrderRow], *, now: datetime, sent_at: datetime | None
) -> Outcome | None:
    """An ambiguous send looked up in the follower's order book: the outcome it proves, or
    None (not found yet). A MODIFY/CANCEL is judged by its linked order (`ACTION_RESOLVERS`)."""
    if c.action != CopyTrade.Action.PLACE:
        resolver = ACTION_RESOLVERS.get(c.action)
        return resolver(c, rows, now=now, sent_at=sent_at) if resolver is not None else None
    row = match_tag(rows, c)
    return found_outcome(c, row, now=now, sent_at=sent_at) if row is not None else None


def not_found_outcome(c: Claimed, *, sent_at: datetime | None, why: str) -> Outcome:
    total = lookup_schedule()[-1]
    if c.action != CopyTrade.Action.PLACE:
        # a modification or cancellation sets absolute values: sending it again is safe
        why = f"not confirmed in the order book: {why}"
        return _retry(c, why, now=clock.now(), sent_at=sent_at)
    return Outcome(
        c,
        Status.UNKNOWN,
        Reason.NOT_FOUND,
        message(Reason.NOT_FOUND, tag=c.tag, seconds=round(total)),
        error_message=why[:500],
        sent_at=sent_at,
    )


def resolve_by_tag(
    c: Claimed,
    lookup: Callable[[], list[OrderRow]],
    *,
    sent_at: datetime | None,
    why: str = "",
    sleep: Callable[[float], Any] = time.sleep,
) -> Outcome:
    """The synchronous ambiguous path: search the follower's order book for the tag at the
    lookup schedule's times; found → SUCCESS/FAILED, absent → UNKNOWN."""
    start = time.monotonic()
    for at in lookup_schedule():
        wait = at - (time.monotonic() - start)
        if wait > 0:
            sleep(wait)
        try:
            found = lookup_outcome(c, lookup(), now=clock.now(), sent_at=sent_at)
        except BrokerError as exc:
            logger.warning(
                "order book lookup failed", extra={"ctx": {"tag": c.tag, "error": str(exc)}}
            )
            continue
        if found is not None:
            return found
    return not_found_outcome(c, sent_at=sent_at, why=why)


# --- Recording --------------------------------------------------------------------------------
def record_outcomes(outcomes: Sequence[Outcome], *, now: datetime | None = None) -> list[int]:
    """Write outcomes in one transaction; return the ids whose status changed.

    Conditional on the row still being SENDING (or UNKNOWN, for a late SUCCESS/FAILED): a row
    another process already settled is left alone.
    """
    now = now or clock.now()
    changed: list[int] = []
    if not outcomes:
        return changed
    with transaction.atomic():
        current = dict(
            CopyTrade.objects.select_for_update()
            .filter(pk__in=[o.claimed.id for o in outcomes])
            .values_list("pk", "status")
        )
        success = [
            o
            for o in outcomes
            if o.status == Status.SUCCESS
            and current.get(o.claimed.id) in (Status.SENDING, Status.UNKNOWN)
        ]
        if success:
            _write_success(success, now)
            transitions.record(
                [
                    (o.claimed.id, current[o.claimed.id], Status.SUCCESS, o.text or "acknowledged")
                    for o in success
                ],
                now,
            )
            alerts.resolve_unknown(
                [o.claimed.id for o in success if current[o.claimed.id] == Status.UNKNOWN], now
            )
            changed += [o.claimed.id for o in success]
        for o in outcomes:
            if o.status == Status.SUCCESS:
                continue
            if o.status == "ambiguous":
                continue
            was = current.get(o.claimed.id)
            allowed = (
                (Status.SENDING, Status.UNKNOWN) if o.status == Status.FAILED else (Status.SENDING,)
            )
            if was is None or was not in allowed:
                continue
            if _write_other(o, was, now):
                changed.append(o.claimed.id)
        moved = set(changed)
        for o in outcomes:
            hook = ACTION_RECORDED.get(o.claimed.action)
            if hook is not None and o.claimed.id in moved:
                hook(o, current[o.claimed.id], now)
    return changed


def _write_success(items: list[Outcome], now: datetime) -> None:
    """The hot path: one statement for every acknowledged row."""
    table = CopyTrade._meta.db_table
    sql = (
        f"UPDATE {table} SET status = %s, broker_order_id = %s, sent_at = %s, "  # noqa: S608
        "acknowledged_at = %s, reason_code = '', reason = %s, version = version + 1, "
        "updated_at = %s, broker_status = %s, next_attempt_at = NULL "
        "WHERE id = %s AND status IN (%s, %s)"
    )
    params = [
        (
            Status.SUCCESS,
            o.broker_order_id[:40],
            o.sent_at,
            o.acknowledged_at or now,
            (o.text or "")[:500],
            now,
            (o.found.raw_status[:40] if o.found is not None else ""),
            o.claimed.id,
            Status.SENDING,
            Status.UNKNOWN,
        )
        for o in items
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _write_other(o: Outcome, was: str, now: datetime) -> bool:
    c = o.claimed
    fields: dict[str, Any] = {
        "reason_code": o.reason.value if o.reason is not None else "",
        "reason": o.text[:500],
    }
    if o.sent_at is not None:
        fields["sent_at"] = o.sent_at
    if o.status == Status.FAILED:
        fields.update(
            broker_error_code=o.error_code,
            broker_error_message=o.error_message,
            broker_order_id=o.broker_order_id,
            acknowledged_at=o.acknowledged_at,
            broker_final=True,
        )
    elif o.status == Status.PENDING:
        fields.update(next_attempt_at=o.retry_at, claimed_by="")
    elif o.status == Status.UNKNOWN:
        fields.update(broker_error_message=o.error_message)
    moved = transitions.move(c.id, from_statuses=(was,), to=o.status, at=now, note=o.text, **fields)
    if moved is None:
        return False
    if (
        c.intent == EXIT
        and c.action == CopyTrade.Action.PLACE
        and o.status in (Status.FAILED, Status.PENDING, Status.EXPIRED)
    ):
        ledger.release_exit(_ledger_key(c), c.quantity)
    if o.status == Status.UNKNOWN:
        alerts.raise_alert(
            kind=alerts.AlertKind.UNKNOWN_ORDER,
            master_id=c.master_id,
            follower_id=c.follower_id,
            copy_trade_id=c.id,
            message=o.text,
            at=now,
        )
    elif o.status == Status.FAILED:
        alerts.raise_alert(
            kind=alerts.AlertKind.COPY_FAILED,
            master_id=c.master_id,
            follower_id=c.follower_id,
            copy_trade_id=c.id,
            message=o.text,
            at=now,
        )
    return True


def _ledger_key(c: Claimed) -> CopyTrade:
    return CopyTrade(
        pk=c.id,
        master_id=c.master_id,
        follower_id=c.follower_id,
        exchange=c.exchange,
        token=c.token,
        product=c.product,
        side=c.side,
        trading_symbol=c.trading_symbol,
    )


# --- The synchronous path: a plain function of a CopyTrade id -------------------------------------
def send_copy_trade(
    copy_trade_id: int,
    *,
    run_id: str = "sync",
    client_for: Callable[[int], Any] | None = None,
) -> str:
    """Claim, send and record one copy trade synchronously; return its status afterwards.

    ``client_for(account_id)`` gives a synchronous AliceBlue client (default: the account's
    ready session through `trading.brokers.sessions`). Safe to call from several processes
    at once for the same id: only the claimer sends.
    """
    from trading.engine import faults

    claimer = new_claimer(run_id)
    got = claim([copy_trade_id], claimer=claimer)
    if not got.claimed:
        return CopyTrade.objects.values_list("status", flat=True).get(pk=copy_trade_id)
    faults.kill_point("after_claim")
    c = got.claimed[0]
    outcome = send_claimed_sync(c, client_for=client_for)
    faults.kill_point("after_send")
    if outcome.ambiguous:
        client = _sync_client(c, client_for)
        outcome = resolve_by_tag(c, client.order_book, sent_at=outcome.sent_at, why=outcome.text)
    record_outcomes([outcome])
    faults.kill_point("after_ack")
    return CopyTrade.objects.values_list("status", flat=True).get(pk=copy_trade_id)


def _sync_client(c: Claimed, client_for: Callable[[int], Any] | None) -> Any:
    if c.account_id is None:
        raise NeedsDailyLogin("no broker account")
    if client_for is not None:
        return client_for(c.account_id)
    from trading.brokers import sessions
    from trading.brokers.aliceblue.client import AliceBlueClient

    return AliceBlueClient(sessions.session_for(account=c.account_id))


def send_claimed_sync(c: Claimed, *, client_for: Callable[[int], Any] | None = None) -> Outcome:
    """Send one claimed row with a synchronous client and classify the result."""
    now = clock.now()
    deadline = c.deadline
    if deadline is not None and now > deadline:
        return expired(c, "")
    if c.action != CopyTrade.Action.PLACE and c.action not in SYNC_ACTION_SENDERS:
        return Outcome(
            c, Status.FAILED, Reason.INVALID_ORDER, NO_ACTION_SENDER.format(action=c.action)
        )
    try:
        request = build_request(c) if c.action == CopyTrade.Action.PLACE else None
        client = _sync_client(c, client_for)
    except (ValueError, BrokerError) as exc:
        return classify(c, exc, sent_at=None, now=clock.now())
    sent_at = clock.now()
    try:
        result: OrderAck | BaseException = (
            client.place_order(request)
            if request is not None
            else SYNC_ACTION_SENDERS[c.action](client, c)
        )
    except Exception as exc:  # classified below; nothing escapes unrecorded
        result = exc
    return classify(c, result, sent_at=sent_at, now=clock.now())
