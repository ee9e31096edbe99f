"""Modify and cancel mirroring (issue 5, mirror-orders mode).

**Linked orders.** Each follower order is linked to the master order it copies: the PLACE
copy trades of a master order (written for its ``accepted`` event, and any leg a
modification added) are the follower orders a later ``modified`` / ``cancelled`` event acts
on. A MODIFY/CANCEL CopyTrade row points at the PLACE row it changes (``linked``) and is
sent against that row's broker order id — never the master's.

**Decision** (`on_modified`, `on_cancelled`; `decide.LIFECYCLE_HANDLERS`, inside the
decision transaction, no network):

* a modification re-sizes each follower's copy by the same rules as the original (entry:
  `size_entry` with the follower's multiplier and cap; exit: `size_exit` proportional to the
  master's position, from the follower's position excluding this order's own copy) and
  splits it into freeze legs: an open leg whose size or price changes gets a MODIFY row; a
  leg the new size no longer needs gets a CANCEL row; a new leg beyond the freeze quantity
  is a new PLACE row. A quantity or value increase of an entry passes the entry checks
  again (an increase is a new entry risk); a blocked one leaves the order as it was.
* a cancellation writes a CANCEL row for each follower's open linked order.
* a linked copy not sent yet (PENDING) is changed or cancelled in the database by a
  conditional update (it loses cleanly to a claim) and nothing is sent; one being sent or
  not acknowledged yet (SENDING, UNKNOWN) is waited for (the MODIFY/CANCEL row stays PENDING
  until the linked order has a broker order id, then goes): a cancel is never lost.
* a linked copy that already filled is left alone: the row is SKIPPED ``already_filled``
  and an Alert of kind DRIFT records the mismatch for reconciliation.
* in copy-fills mode followers copy fills, not orders: a modification or cancellation has
  nothing to mirror (the event's outcome says so).

**Sending** (the shared path in `sender` claims, governs, classifies and records):
`claim_action` is the claim of a MODIFY/CANCEL (`sender.ACTION_CLAIMS`): it keeps the
actions on one follower order in order, waits for the linked acknowledgement, settles rows
with nothing left to act on, and reserves in the position ledger what a modification adds
to an exit (never oversold). The senders call the client's ``modify_order`` /
``cancel_order``; `after_outcome` (`sender.ACTION_RECORDED`) applies an acknowledged
modification to the linked row (quantity, prices; exit reservations follow); an ambiguous
send is judged by the linked order in the order book (`resolve_action`) and, unconfirmed,
retried (a modification or cancellation sets absolute values: repeating it is safe).

Partial fills in mirror-orders mode need nothing here: the follower's order fills on its own
and `tracking` moves the ledger by its fills.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from django.db.models import F

from accounts.models import BrokerAccount, Follower, Master
from copytrade.lib import calendar
from copytrade.lib.sizing import size_entry, size_exit, split_legs, split_reversal
from trading.brokers.aliceblue.errors import Rejected
from trading.brokers.aliceblue.types import (
    ModifyRequest,
    OrderAck,
    OrderRow,
    OrderStatus,
    OrderType,
    Product,
    Side,
    Validity,
)
from trading.engine import alerts, decide, ledger, sender, tags, tracker, transitions
from trading.engine.checks import CheckContext, FollowerView, check_entry
from trading.engine.decide import FollowerState, Plan, Recorded
from trading.engine.reasons import EventOutcome, Reason, message
from trading.engine.sender import Claimed, Outcome
from trading.models import CopyTrade, MasterOrder, MasterOrderEvent, PositionBook

Status = CopyTrade.Status
Action = CopyTrade.Action
ENTRY = CopyTrade.Intent.ENTRY.value
EXIT = CopyTrade.Intent.EXIT.value
MODIFY_PREFIX = "CM"
CANCEL_PREFIX = "CX"
PREFIXES = {Action.MODIFY.value: MODIFY_PREFIX, Action.CANCEL.value: CANCEL_PREFIX}
#: A linked copy whose broker order may still change.
LIVE = (Status.PENDING, Status.SENDING, Status.SUCCESS, Status.UNKNOWN)
#: How soon an action waiting for its linked order's acknowledgement looks again.
WAIT_FOR_ACK = timedelta(seconds=0.5)
WAIT_FOR_UNKNOWN = timedelta(seconds=5)
FILLS_MODE_NOTE = (
    "Copy-fills mode: followers copy the master's fills, not its orders; a {what} has "
    "nothing to mirror."
)


# --- Linked orders ----------------------------------------------------------------------------
def linked_copies(order: MasterOrder) -> dict[int, list[CopyTrade]]:
    """Per follower, the PLACE copies of this master order that later master events act on:
    those of its ``accepted`` event and the legs a modification added (oldest first)."""
    out: dict[int, list[CopyTrade]] = defaultdict(list)
    for ct in CopyTrade.objects.filter(
        event__master_order=order,
        event__kind__in=(tracker.ACCEPTED, tracker.MODIFIED),
        action=Action.PLACE,
    ).order_by("pk"):
        out[ct.follower_id].append(ct)
    return out


def _live(ct: CopyTrade) -> bool:
    return ct.status in LIVE and not ct.broker_final


def _inactive_states(follower_ids: set[int]) -> list[FollowerState]:
    """Followers no longer active whose copies of the order are still linked: their open
    orders are still ours to change or cancel (entries are never increased for them)."""
    accounts = dict(
        BrokerAccount.objects.filter(owner__follower__in=list(follower_ids)).values_list(
            "owner__follower", "pk"
        )
    )
    states = []
    for f in Follower.objects.filter(pk__in=list(follower_ids)):
        view = FollowerView(
            id=f.pk,
            display_name=f.display_name,
            lot_multiplier=f.lot_multiplier,
            max_quantity=f.max_quantity,
            max_order_value=f.max_order_value,
            max_daily_loss=f.max_daily_loss,
            allowed_instruments=tuple(f.allowed_instruments or ()),
            allowed_product_types=tuple(f.allowed_product_types or ()),
            is_paused=True,
            account_id=accounts.get(f.pk),
            session_ready=False,
            daily_pnl=None,
        )
        states.append(FollowerState(view))
    return states


def _followers(order: MasterOrder, linked: dict[int, list[CopyTrade]]) -> list[FollowerState]:
    states = decide.load_followers(
        order.master_id, exchange=order.exchange, token=order.token, product=order.product
    )
    missing = set(linked) - {s.view.id for s in states}
    if missing:
        states += _inactive_states(missing)
    return states


def _reference_at(event: MasterOrderEvent) -> datetime:
    """When the master changed the order (never later than when we saw it)."""
    when = event.broker_time
    if when is None or when > event.received_at:
        return event.received_at
    return when


def _action_row(
    plan: Plan,
    f: FollowerState,
    linked: CopyTrade,
    *,
    action: str,
    status: str,
    quantity: int,
    reason: Reason | None = None,
    text: str = "",
    order_type: str | None = None,
    price: Decimal | None = None,
    trigger: Decimal | None = None,
    sizing_note: str = "",
) -> dict[str, Any]:
    """A MODIFY/CANCEL row acting on ``linked`` (its own tag prefix; never stale: a change
    of a working order is still right when it is late)."""
    row = plan.add(
        f,
        intent=linked.intent,
        side=linked.side,
        quantity=quantity,
        master_quantity=plan.order.quantity,
        status=status,
        order_type=order_type or linked.order_type,
        price=price if order_type else linked.price,
        trigger=trigger if order_type else linked.trigger_price,
        lot_size=linked.lot_size,
        sizing_note=sizing_note,
        reason=reason,
        reason_text=text,
    )
    row.update(
        action=action,
        tag=tags.make_tag(plan.event.pk, f.view.id, row["leg"], prefix=PREFIXES[action]),
        linked_id=linked.pk,
        master_accepted_at=None,
        product=linked.product,
        validity=linked.validity,
        complexity=linked.complexity,
    )
    return row


def _nothing_row(
    plan: Plan, f: FollowerState, *, action: str, rows: list[CopyTrade]
) -> dict[str, Any]:
    """One SKIPPED row for a follower with no open copy to act on (the event is accounted
    for in every follower's history)."""
    if rows:
        last = rows[-1]
        detail = f"its copy {last.tag} is {last.status}"
        if last.reason:
            detail += f": {last.reason[:200]}"
    else:
        detail = "the order was not copied to this follower"
    reason = Reason.NOTHING_TO_MODIFY if action == Action.MODIFY else Reason.NOTHING_TO_CANCEL
    row = plan.add(
        f,
        intent=rows[-1].intent if rows else ENTRY,
        side=plan.order.side,
        quantity=0,
        master_quantity=plan.order.quantity,
        status=Status.SKIPPED,
        reason=reason,
        reason_text=message(reason, detail=detail),
    )
    row.update(
        action=action,
        tag=tags.make_tag(plan.event.pk, f.view.id, row["leg"], prefix=PREFIXES[action]),
        linked_id=rows[-1].pk if rows else None,
        master_accepted_at=None,
    )
    return row


def _drift(ct: CopyTrade, order: MasterOrder, *, what: str, at: datetime) -> str:
    """The follower's copy already filled: the mismatch, recorded for reconciliation."""
    text = message(
        Reason.ALREADY_FILLED,
        tag=ct.tag,
        filled=ct.filled_quantity,
        quantity=ct.quantity,
        order=order.broker_order_id,
        master_filled=order.filled_quantity,
        master_quantity=order.quantity,
        what=what,
    )
    alerts.raise_alert(
        kind=alerts.AlertKind.DRIFT,
        master_id=ct.master_id,
        follower_id=ct.follower_id,
        copy_trade_id=ct.pk,
        message=text,
        at=at,
    )
    return text


# --- Changing a copy that was not sent yet (conditional: loses cleanly to a claim) -----------
def cancel_unsent(linked_id: int, *, at: datetime) -> bool:
    """PENDING → CANCELLED for a copy whose master order was cancelled before it was sent."""
    text = message(Reason.MASTER_CANCELLED)
    moved = transitions.move(
        linked_id,
        from_statuses=(Status.PENDING,),
        to=Status.CANCELLED,
        at=at,
        note=text,
        reason_code=Reason.MASTER_CANCELLED.value,
        reason=text,
        next_attempt_at=None,
    )
    return moved is not None


def modify_unsent(
    linked_id: int,
    *,
    quantity: int,
    order_type: str,
    price: Decimal | None,
    trigger: Decimal | None,
    master_quantity: int,
    at: datetime,
) -> bool:
    """A copy not sent yet takes the master's new quantity and prices before it is sent."""
    return bool(
        CopyTrade.objects.filter(pk=linked_id, status=Status.PENDING).update(
            quantity=quantity,
            order_type=order_type,
            price=price if order_type in ("LIMIT", "SL") else None,
            trigger_price=trigger if order_type in ("SL", "SLM") else None,
            master_quantity=master_quantity,
            version=F("version") + 1,
            updated_at=at,
        )
    )


# --- Decision: the master cancelled -------------------------------------------------------------
@dataclass(frozen=True)
class _Start:
    plan: Plan
    linked: dict[int, list[CopyTrade]]
    followers: list[FollowerState]


def _start(
    event: MasterOrderEvent, order: MasterOrder, master: Master, now: datetime, *, what: str
) -> tuple[Recorded, str, str] | _Start:
    """What a cancellation and a modification share before deciding per follower: nothing
    to mirror in fills mode or without followers (the outcome), else the plan, the order's
    copies by follower and the followers."""
    if master.copy_mode == Master.CopyMode.COPY_FILLS:
        return Recorded(), EventOutcome.RECORDED, FILLS_MODE_NOTE.format(what=what)
    linked = linked_copies(order)
    followers = _followers(order, linked)
    if not followers:
        return Recorded(), EventOutcome.NO_FOLLOWERS, "The master has no active followers."
    return _Start(Plan(event, order, now, _reference_at(event)), linked, followers)


def on_cancelled(
    event: MasterOrderEvent, order: MasterOrder, master: Master, now: datetime
) -> tuple[Recorded, str, str]:
    start = _start(event, order, master, now, what="cancellation")
    if not isinstance(start, _Start):
        return start
    plan, linked, followers = start.plan, start.linked, start.followers
    drift = 0
    for f in followers:
        rows = linked.get(f.view.id, [])
        wrote = False
        for ct in rows:
            if _live(ct):
                _cancel_leg(plan, f, ct, now=now)
                wrote = True
            elif ct.status == Status.SUCCESS and ct.filled_quantity > 0:
                text = _drift(ct, order, what="cancelled", at=now)
                _action_row(
                    plan,
                    f,
                    ct,
                    action=Action.CANCEL,
                    status=Status.SKIPPED,
                    quantity=0,
                    reason=Reason.ALREADY_FILLED,
                    text=text,
                )
                drift += 1
                wrote = True
        if not wrote:
            _nothing_row(plan, f, action=Action.CANCEL, rows=rows)
    recorded = plan.save()
    note = f"cancellation mirrored: {len(recorded.pending_ids)} follower orders to cancel" + (
        f", {drift} already filled (drift recorded)" if drift else ""
    )
    return recorded, EventOutcome.COPIED, note


# --- Decision: the master modified ---------------------------------------------------------------
def _own_contribution(rows: list[CopyTrade]) -> int:
    """This order's copies in the follower's effective position (filled + still working)."""
    total = 0
    for ct in rows:
        working = ct.status in LIVE and not ct.broker_final
        moved = ct.ledger_quantity + (max(ct.quantity - ct.ledger_quantity, 0) if working else 0)
        total += moved if ct.side == "BUY" else -moved
    return total


def _params(ct: CopyTrade) -> tracker.Params:
    return tracker.params_of(ct.quantity, ct.price, ct.trigger_price, ct.order_type)


def _value(quantity: int, order_type: str, price: Decimal | None, trigger: Decimal | None) -> Any:
    unit = price if order_type in ("LIMIT", "SL") and price else trigger or Decimal(0)
    return unit * quantity


def on_modified(
    event: MasterOrderEvent, order: MasterOrder, master: Master, now: datetime
) -> tuple[Recorded, str, str]:
    start = _start(event, order, master, now, what="modification")
    if not isinstance(start, _Start):
        return start
    plan, linked, followers = start.plan, start.linked, start.followers
    facts = decide.order_facts(order, None)
    lot = facts.lot_size or 1
    book = PositionBook.MANUAL if order.manual else PositionBook.BROKER
    master_before = decide.master_position_before(order, book)
    side: Literal["BUY", "SELL"] = "BUY" if order.side == "BUY" else "SELL"
    exit_m, entry_m = split_reversal(master_before, side, order.quantity)
    ctx = CheckContext(
        kill_switch=master.entries_paused,
        now=now,
        round_the_clock=calendar.round_the_clock_from_settings(),
    )
    counts: dict[str, int] = defaultdict(int)
    for f in followers:
        rows = linked.get(f.view.id, [])
        written = len(plan.rows)
        base = f.effective - _own_contribution(rows)
        for intent in (EXIT, ENTRY):
            group = [ct for ct in rows if ct.intent == intent]
            if not group and rows:
                # the modification made a part the follower's copy does not have (e.g. an
                # exit raised beyond the master's position: the rest opens the other way):
                # decided like any part of a fresh order
                if _new_part(plan, f, intent, exit_m, entry_m, master_before, base, facts, ctx):
                    counts["added"] += 1
                continue
            if not any(_live(ct) for ct in group):
                continue
            if intent == EXIT:
                sized = size_exit(master_before, exit_m, base, lot_size=lot) if exit_m else None
                target, note = (sized.quantity, sized.note) if sized else (0, "no exit left")
            else:
                multiplier, cap = f.view.lot_multiplier, f.view.max_quantity
                entry = (
                    size_entry(entry_m, multiplier, lot_size=lot, max_quantity=cap)
                    if entry_m
                    else None
                )
                target, note = (entry.quantity, entry.note) if entry else (0, "no entry left")
                blocked = _entry_increase_blocked(f, group, target, order, facts, entry_m, ctx)
                if blocked is not None:
                    for ct in group:
                        if _live(ct):
                            _action_row(
                                plan,
                                f,
                                ct,
                                action=Action.MODIFY,
                                status=Status.SKIPPED,
                                quantity=target,
                                reason=blocked[0],
                                text=(blocked[1] + " The follower's order stays as it was.")[:500],
                                sizing_note=note,
                            )
                            counts["blocked"] += 1
                    continue
            _resize_group(plan, f, group, target, note, facts.freeze, lot, counts, now)
        if len(plan.rows) == written:
            _nothing_row(plan, f, action=Action.MODIFY, rows=rows)
    recorded = plan.save()
    kinds = ("modified", "cancelled", "added", "unchanged")
    parts = [f"{counts[k]} {k}" for k in kinds if counts[k]]
    if counts["blocked"]:
        parts.append(f"{counts['blocked']} blocked by entry checks")
    if counts["drift"]:
        parts.append(f"{counts['drift']} already filled (drift recorded)")
    note = "modification mirrored: " + (", ".join(parts) or "nothing open to change")
    return recorded, EventOutcome.COPIED, note


def _new_part(
    plan: Plan,
    f: FollowerState,
    intent: str,
    exit_m: int,
    entry_m: int,
    master_before: int,
    base: int,
    facts: decide.OrderFacts,
    ctx: CheckContext,
) -> bool:
    order = plan.order
    if intent == EXIT and exit_m:
        decide._add_exit(
            plan,
            f,
            facts=facts,
            master_before=master_before,
            reduce_qty=exit_m,
            follower_base=base,
            already=0,
            ctx=ctx,
            late=None,
            order_type=order.order_type,
            price=order.price,
            trigger=order.trigger_price,
        )
        return True
    if intent == ENTRY and entry_m:
        decide._add_entry(
            plan,
            f,
            facts=facts,
            master_quantity=entry_m,
            ctx=ctx,
            late=None,
            order_type=order.order_type,
            price=order.price,
            trigger=order.trigger_price,
        )
        return True
    return False


def _entry_increase_blocked(
    f: FollowerState,
    group: list[CopyTrade],
    target: int,
    order: MasterOrder,
    facts: decide.OrderFacts,
    entry_m: int,
    ctx: CheckContext,
) -> tuple[Reason, str] | None:
    """An entry whose quantity or value grows is a new risk: the entry checks apply again."""
    current = sum(ct.quantity if _live(ct) else ct.filled_quantity for ct in group)
    live = [ct for ct in group if _live(ct)]
    old_value = sum(
        (_value(ct.quantity, ct.order_type, ct.price, ct.trigger_price) for ct in live), Decimal(0)
    )
    new_value = _value(target, order.order_type, order.price, order.trigger_price)
    if target <= current and new_value <= old_value:
        return None
    result = check_entry(f.view, facts.view, entry_m, ctx)
    if result.reason is None:
        return None
    return result.reason, result.message


def _resize_group(
    plan: Plan,
    f: FollowerState,
    group: list[CopyTrade],
    target: int,
    note: str,
    freeze: int | None,
    lot: int,
    counts: dict[str, int],
    now: datetime,
) -> None:
    """Spread the re-sized quantity over the follower's legs of one intent: open legs are
    modified (or cancelled when no longer needed), legs beyond the freeze quantity added."""
    order = plan.order
    live = [ct for ct in group if _live(ct)]
    settled = sum(ct.filled_quantity for ct in group if not _live(ct))
    open_target = max(target - settled, 0)
    if open_target == 0:
        parts: tuple[int, ...] = ()
    elif open_target % lot == 0:
        parts = split_legs(open_target, freeze, lot)
    else:
        parts = (open_target,)
    new_params = tracker.params_of(0, order.price, order.trigger_price, order.order_type)
    for index, ct in enumerate(live):
        quantity = parts[index] if index < len(parts) else 0
        if quantity <= ct.filled_quantity:
            if ct.filled_quantity > quantity:
                _drift(ct, order, what=f"modified to {order.quantity}", at=now)
                counts["drift"] += 1
            _cancel_leg(plan, f, ct, now=now, why=f"re-sized to {quantity}: {note}")
            counts["cancelled"] += 1
            continue
        old = _params(ct)
        if quantity == ct.quantity and (old.price, old.trigger_price, old.order_type) == (
            new_params.price,
            new_params.trigger_price,
            new_params.order_type,
        ):
            _action_row(
                plan,
                f,
                ct,
                action=Action.MODIFY,
                status=Status.SKIPPED,
                quantity=quantity,
                reason=Reason.UNCHANGED,
                text=message(Reason.UNCHANGED, tag=ct.tag, quantity=quantity),
                sizing_note=note,
            )
            counts["unchanged"] += 1
            continue
        change: dict[str, Any] = {
            "quantity": quantity,
            "order_type": order.order_type,
            "price": order.price,
            "trigger": order.trigger_price,
        }
        if ct.status == Status.PENDING and modify_unsent(
            ct.pk, master_quantity=order.quantity, at=now, **change
        ):
            _action_row(
                plan,
                f,
                ct,
                action=Action.MODIFY,
                status=Status.SKIPPED,
                reason=Reason.BEFORE_SEND,
                text=message(Reason.BEFORE_SEND, tag=ct.tag, what="changed"),
                sizing_note=note,
                **change,
            )
        else:
            _action_row(
                plan, f, ct, action=Action.MODIFY, status=Status.PENDING, sizing_note=note, **change
            )
        counts["modified"] += 1
    template = live[-1] if live else group[-1]
    for quantity in parts[len(live) :]:
        plan.add(
            f,
            intent=template.intent,
            side=template.side,
            quantity=quantity,
            master_quantity=order.quantity,
            status=Status.PENDING,
            lot_size=lot,
            order_type=order.order_type,
            price=order.price,
            trigger=order.trigger_price,
            sizing_note=f"a leg added by the master's modification: {note}",
        )
        counts["added"] += 1


def _cancel_leg(
    plan: Plan, f: FollowerState, ct: CopyTrade, *, now: datetime, why: str | None = None
) -> None:
    """Cancel one live copy: unsent, it is cancelled here (a SKIPPED row says so); sent, a
    PENDING CANCEL row for its open quantity. ``why`` is the rows' sizing note (by default
    none on the unsent one, the open and filled quantities on the sent one)."""
    if ct.status == Status.PENDING and cancel_unsent(ct.pk, at=now):
        _action_row(
            plan,
            f,
            ct,
            action=Action.CANCEL,
            status=Status.SKIPPED,
            quantity=ct.quantity,
            reason=Reason.BEFORE_SEND,
            text=message(Reason.BEFORE_SEND, tag=ct.tag, what="cancelled"),
            sizing_note=why or "",
        )
        return
    remaining = max(ct.quantity - ct.filled_quantity, 0)
    if why is None:
        why = f"cancel the open {remaining} of {ct.quantity} (filled {ct.filled_quantity})"
    _action_row(
        plan,
        f,
        ct,
        action=Action.CANCEL,
        status=Status.PENDING,
        quantity=remaining,
        sizing_note=why,
    )


# --- Claiming a MODIFY/CANCEL -----------------------------------------------------------------
def _settle(pk: int, *, to: str, reason: Reason, text: str, claimer: str, now: datetime) -> str:
    moved = transitions.move(
        pk,
        from_statuses=(Status.PENDING,),
        to=to,
        at=now,
        note=text,
        reason_code=reason.value,
        reason=text[:500],
        claimed_by=claimer,
        next_attempt_at=None,
        broker_final=True,
    )
    return "skipped" if moved is not None else "lost"


def _defer(pk: int, *, now: datetime, wait: timedelta, text: str) -> str:
    CopyTrade.objects.filter(pk=pk, status=Status.PENDING).update(
        next_attempt_at=now + wait, reason=text[:500]
    )
    return "deferred"


def claim_actions(
    rows: list[dict[str, Any]], *, claimer: str, now: datetime
) -> list[Claimed | str]:
    """Claim PENDING MODIFY/CANCEL rows (inside `sender.claim`'s transaction). The common
    case — the linked order acknowledged and open, no earlier change of it unsettled, no
    exit growing — is claimed for all rows at once (a master's cancel fans out to every
    follower); every other row takes `claim_action`."""
    linked_ids = {v["linked_id"] for v in rows if v["linked_id"] is not None}
    linked = {
        v["pk"]: v
        for v in CopyTrade.objects.filter(pk__in=linked_ids).values(
            "pk", "status", "broker_order_id", "broker_final", "intent", "quantity"
        )
    }
    earliest: dict[int, int] = {}
    for linked_id, pk in (
        CopyTrade.objects.filter(
            linked_id__in=linked_ids, status__in=(Status.PENDING, Status.SENDING)
        )
        .exclude(action=Action.PLACE)
        .values_list("linked_id", "pk")
    ):
        earliest[linked_id] = min(pk, earliest.get(linked_id, pk))
    plain = []
    for v in rows:
        ct = linked.get(v["linked_id"])
        if (
            ct is not None
            and ct["status"] == Status.SUCCESS
            and ct["broker_order_id"]
            and not ct["broker_final"]
            and earliest.get(ct["pk"], v["pk"]) >= v["pk"]
            and not (
                v["action"] == Action.MODIFY
                and ct["intent"] == EXIT
                and v["quantity"] > ct["quantity"]
            )
        ):
            plain.append(v["pk"])
    moved = set(
        sender._bulk_move(
            plain,
            to=Status.SENDING,
            claimer=claimer,
            now=now,
            note="claimed",
            extra={"claimed_at": now, "attempts": F("attempts") + 1, "reason": ""},
        )
        if plain
        else []
    )
    plain_set = set(plain)
    out: list[Claimed | str] = []
    for v in rows:
        if v["pk"] in plain_set:
            out.append(sender._claimed(v, claimer) if v["pk"] in moved else "lost")
        else:
            out.append(claim_action(v, claimer=claimer, now=now))
    return out


def claim_action(values: dict[str, Any], *, claimer: str, now: datetime) -> Claimed | str:
    """Claim one PENDING MODIFY/CANCEL (inside `sender.claim`'s transaction)."""
    pk, action = values["pk"], values["action"]
    verb = "cancel" if action == Action.CANCEL else "modify"
    linked = CopyTrade.objects.filter(pk=values["linked_id"]).first()
    if linked is None:
        reason = Reason.NOTHING_TO_CANCEL if action == Action.CANCEL else Reason.NOTHING_TO_MODIFY
        text = message(reason, detail="no linked copy")
        return _settle(pk, to=Status.SKIPPED, reason=reason, text=text, claimer=claimer, now=now)
    # the actions on one follower order go in the order they were decided
    if CopyTrade.objects.filter(
        linked_id=linked.pk, pk__lt=pk, status__in=(Status.PENDING, Status.SENDING)
    ).exists():
        text = f"Waiting for an earlier change of the follower's order {linked.tag}."
        return _defer(pk, now=now, wait=WAIT_FOR_ACK, text=text)
    if linked.status == Status.PENDING:
        if action == Action.CANCEL:
            done = cancel_unsent(linked.pk, at=now)
        else:
            done = modify_unsent(
                linked.pk,
                quantity=values["quantity"],
                order_type=values["order_type"],
                price=values["price"],
                trigger=values["trigger_price"],
                master_quantity=linked.master_quantity,
                at=now,
            )
        if done:
            what = "cancelled" if action == Action.CANCEL else "changed"
            text = message(Reason.BEFORE_SEND, tag=linked.tag, what=what)
            return _settle(
                pk,
                to=Status.SKIPPED,
                reason=Reason.BEFORE_SEND,
                text=text,
                claimer=claimer,
                now=now,
            )
    if linked.status in (Status.PENDING, Status.SENDING, Status.UNKNOWN) or (
        linked.status == Status.SUCCESS and not linked.broker_order_id
    ):
        wait = WAIT_FOR_UNKNOWN if linked.status == Status.UNKNOWN else WAIT_FOR_ACK
        text = f"Waiting for the follower's order {linked.tag} to be acknowledged, then {verb}."
        return _defer(pk, now=now, wait=wait, text=text)
    if not _live(linked):
        if linked.status == Status.SUCCESS and linked.filled_quantity > 0:
            order = MasterOrder.objects.get(events__pk=linked.event_id)
            what = "cancelled" if action == Action.CANCEL else "modified"
            text = _drift(linked, order, what=what, at=now)
            return _settle(
                pk,
                to=Status.SKIPPED,
                reason=Reason.ALREADY_FILLED,
                text=text,
                claimer=claimer,
                now=now,
            )
        reason = Reason.NOTHING_TO_CANCEL if action == Action.CANCEL else Reason.NOTHING_TO_MODIFY
        text = message(reason, detail=f"its copy {linked.tag} is {linked.status}, closed")
        return _settle(pk, to=Status.SKIPPED, reason=reason, text=text, claimer=claimer, now=now)
    quantity = values["quantity"]
    if action == Action.MODIFY and linked.intent == EXIT and quantity > linked.quantity:
        quantity = _reserve_exit_increase(pk, linked, quantity)
    took = CopyTrade.objects.filter(pk=pk, status=Status.PENDING).update(
        status=Status.SENDING,
        claimed_by=claimer,
        claimed_at=now,
        attempts=F("attempts") + 1,
        version=F("version") + 1,
        updated_at=now,
        reason="",
    )
    if not took:
        return "lost"
    transitions.record([(pk, Status.PENDING, Status.SENDING, "claimed")], now)
    return sender._claimed(values, claimer, quantity=quantity)


def _reserve_exit_increase(pk: int, linked: CopyTrade, quantity: int) -> int:
    """A modification that makes an exit bigger reserves the difference in the ledger; cut to
    what the ledger holds (never oversold)."""
    delta = quantity - linked.quantity
    if ledger.reserve_exit(linked, delta):
        return quantity
    lot = max(linked.lot_size or 1, 1)
    available = ledger.available_to_exit(linked) // lot * lot
    if available > 0 and ledger.reserve_exit(linked, available):
        cut = linked.quantity + available
    else:
        cut = linked.quantity
    CopyTrade.objects.filter(pk=pk).update(
        quantity=cut, sizing_note=f"cut to {cut}: the ledger holds only that (never oversold)"
    )
    return cut


# --- Sending ----------------------------------------------------------------------------------
def modify_request(c: Claimed) -> ModifyRequest:
    return ModifyRequest(
        broker_order_id=c.linked_broker_order_id,
        exchange=c.exchange,
        token=c.token,
        trading_symbol=c.trading_symbol,
        side=Side(c.side),
        product=Product(c.product),
        quantity=c.quantity,
        order_type=OrderType(c.order_type),
        price=c.price if c.order_type in ("LIMIT", "SL") else None,
        trigger_price=c.trigger_price if c.order_type in ("SL", "SLM") else None,
        validity=Validity(c.validity or "DAY"),
    )


class OrderClosed(Exception):
    """The broker refused the change because the follower's order is no longer open (it
    filled, or was rejected, just before): the send is judged by the order book
    (`resolve_action`), not recorded as a failure."""


def _order_id(c: Claimed) -> str:
    if not c.linked_broker_order_id:
        raise ValueError("the linked follower order has no broker order id")
    return c.linked_broker_order_id


def _closed(c: Claimed, rows: list[OrderRow], refusal: Rejected) -> Exception:
    row = _linked_row(c, rows)
    if row is not None and row.status in (OrderStatus.COMPLETE, OrderStatus.REJECTED):
        return OrderClosed(str(refusal))
    return refusal


async def send_modify(client: Any, c: Claimed) -> OrderAck:
    _order_id(c)
    try:
        ack: OrderAck = await client.modify_order(modify_request(c))
    except Rejected as exc:
        raise _closed(c, await client.order_book(), exc) from exc
    return ack


async def send_cancel(client: Any, c: Claimed) -> OrderAck:
    try:
        ack: OrderAck = await client.cancel_order(_order_id(c))
    except Rejected as exc:
        raise _closed(c, await client.order_book(), exc) from exc
    return ack


def send_modify_sync(client: Any, c: Claimed) -> OrderAck:
    _order_id(c)
    try:
        ack: OrderAck = client.modify_order(modify_request(c))
    except Rejected as exc:
        raise _closed(c, client.order_book(), exc) from exc
    return ack


def send_cancel_sync(client: Any, c: Claimed) -> OrderAck:
    try:
        ack: OrderAck = client.cancel_order(_order_id(c))
    except Rejected as exc:
        raise _closed(c, client.order_book(), exc) from exc
    return ack


# --- After the outcome ------------------------------------------------------------------------
def after_outcome(o: Outcome, was: str, now: datetime) -> None:
    """Inside `sender.record_outcomes`: an acknowledged modification changes the linked copy
    (and the exit's ledger reservation follows); a failed one gives back what it reserved."""
    c = o.claimed
    if c.linked_id is None:
        return
    linked = CopyTrade.objects.filter(pk=c.linked_id).first()
    if linked is None:
        return
    if o.status == Status.SKIPPED and o.reason == Reason.ALREADY_FILLED:
        order = MasterOrder.objects.get(events__pk=linked.event_id)
        if o.found is not None:
            linked.filled_quantity = max(linked.filled_quantity, tracker.filled_of(o.found))
        what = "cancelled" if c.action == Action.CANCEL else "modified"
        text = _drift(linked, order, what=what, at=now)
        CopyTrade.objects.filter(pk=c.id).update(broker_final=True, reason=text)
        return
    if o.status == Status.SUCCESS:
        # a MODIFY/CANCEL row has no broker order of its own to track
        CopyTrade.objects.filter(pk=c.id).update(broker_final=True)
        if c.action != Action.MODIFY:
            return
        old = linked.quantity
        transitions.update_fields(
            linked.pk,
            at=now,
            quantity=c.quantity,
            order_type=c.order_type,
            price=c.price if c.order_type in ("LIMIT", "SL") else None,
            trigger_price=c.trigger_price if c.order_type in ("SL", "SLM") else None,
        )
        if linked.intent == EXIT and c.quantity < old:
            ledger.release_exit(linked, old - c.quantity)
        return
    grew = c.action == Action.MODIFY and linked.intent == EXIT and c.quantity > linked.quantity
    if grew and o.status in (Status.FAILED, Status.PENDING, Status.EXPIRED):
        ledger.release_exit(linked, c.quantity - linked.quantity)


# --- Ambiguous sends --------------------------------------------------------------------------
def resolve_action(
    c: Claimed, rows: list[OrderRow], *, now: datetime, sent_at: datetime | None
) -> Outcome | None:
    """Judge an ambiguous MODIFY/CANCEL by its linked order in the follower's order book."""
    row = _linked_row(c, rows)
    if row is None:
        return None
    if c.action == Action.CANCEL:
        done = row.status == OrderStatus.CANCELLED
    else:
        done = tracker.row_params(row) == tracker.params_of(
            c.quantity, c.price, c.trigger_price, c.order_type
        )
    if done:
        return Outcome(
            c,
            Status.SUCCESS,
            broker_order_id=row.broker_order_id,
            sent_at=sent_at,
            acknowledged_at=now,
            found=row,
            text=f"confirmed in the order book after an ambiguous {c.action}",
        )
    if row.status == OrderStatus.COMPLETE:
        # it filled before the change reached it: left alone, the mismatch recorded (the
        # message with the master's side is written by `after_outcome`, in the DB thread)
        text = f"The follower's copy {c.linked_tag} filled before the {c.action} reached it."
        return Outcome(c, Status.SKIPPED, Reason.ALREADY_FILLED, text, sent_at=sent_at, found=row)
    if row.status in (OrderStatus.CANCELLED, OrderStatus.REJECTED):
        reason = Reason.NOTHING_TO_CANCEL if c.action == Action.CANCEL else Reason.NOTHING_TO_MODIFY
        text = message(reason, detail=f"the follower's order is {row.raw_status or row.status}")
        return Outcome(c, Status.SKIPPED, reason, text, sent_at=sent_at, found=row)
    return None


def _linked_row(c: Claimed, rows: list[OrderRow]) -> OrderRow | None:
    row = next((r for r in rows if r.broker_order_id == c.linked_broker_order_id), None)
    if row is None and c.linked_tag:
        row = next((r for r in rows if tags.same_tag(r.tag, c.linked_tag)), None)
    return row


# --- Registration -----------------------------------------------------------------------------
decide.LIFECYCLE_HANDLERS[tracker.MODIFIED] = on_modified
decide.LIFECYCLE_HANDLERS[tracker.CANCELLED] = on_cancelled
sender.ACTION_SENDERS[Action.MODIFY.value] = send_modify
sender.ACTION_SENDERS[Action.CANCEL.value] = send_cancel
sender.SYNC_ACTION_SENDERS[Action.MODIFY.value] = send_modify_sync
sender.SYNC_ACTION_SENDERS[Action.CANCEL.value] = send_cancel_sync
sender.ACTION_CLAIMS[Action.MODIFY.value] = claim_actions
sender.ACTION_CLAIMS[Action.CANCEL.value] = claim_actions
sender.ACTION_RECORDED[Action.MODIFY.value] = after_outcome
sender.ACTION_RECORDED[Action.CANCEL.value] = after_outcome
sender.ACTION_RESOLVERS[Action.MODIFY.value] = resolve_action
sender.ACTION_RESOLVERS[Action.CANCEL.value] = resolve_action
