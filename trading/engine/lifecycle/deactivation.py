"""Deactivating a follower that holds open copied positions (issue 5, item 8).

The master chooses on the deactivate page (`accounts.services.deactivate_follower`):

* **detach** — the positions stay in the follower's AliceBlue account; their ledger rows are
  marked ``detached``, so the copier no longer sizes exits from them, reserves them, tracks
  or reconciles them. The follower is deactivated at once.
* **flatten** — an exit order for every open copied position, then the deactivation.

Why "flatten" deactivates only after the exits settled (the safe order): deactivation wipes
the follower's broker credentials and session and marks its account inactive, after which the
copier can neither send an exit, nor track its fills, nor look its tag up after an ambiguous
send. Deactivating first would leave the exits unsent or UNKNOWN for good. So:

1. `flatten` (inside the service's transaction, no network) sets ``Follower.deactivating_at``
   (from then on no master event is copied to it: `decide._follower_rows`), cancels its
   PENDING entries and writes one exit per open ledger position through the engine's own exit
   path (`decide._add_exit`: intent EXIT, MARKET, the whole position not already being
   exited, freeze legs, waiting for a session or an open market, tags, transitions) under a
   manual `MasterOrder` ``FLATTEN-…`` that records the request (it never moves the master's
   position books);
2. the copier sends them like any exit (its sweep claims PENDING rows; the claim reserves the
   ledger, so an exit never sells more than the follower holds) and tracks their fills into
   the ledger;
3. the periodic job ``deactivations`` (`finish_deactivations`) completes the deactivation
   (`accounts.services.complete_deactivation`) once the follower has no copy in flight and a
   flat ledger. If something is left (an exit rejected, an entry that filled after the
   flatten), the follower stays "deactivating": the failed exit raised its own alert, and the
   page offers to flatten again or to detach what is left.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import Q

from accounts.models import Follower, User
from copytrade.lib import calendar
from trading.engine import decide, jobs, transitions
from trading.engine.checks import CheckContext
from trading.engine.lifecycle.exits import request_order
from trading.models import (
    CopyTrade,
    MasterOrder,
    MasterOrderEvent,
    PositionLedger,
)

if TYPE_CHECKING:
    from trading.engine.runner import Copier

Status = CopyTrade.Status
FLATTEN_PREFIX = "FLATTEN-"
FLATTEN_OUTCOME_NOTE = "Flatten on deactivation of {name}: {count} exit order(s)."
ENTRY_CANCELLED_REASON = "follower_deactivating"
ENTRY_CANCELLED_TEXT = "Cancelled before it was sent: the follower is being deactivated."
DEACTIVATION_CHECK_SECONDS = 2.0


def _open_ledger(follower_id: int) -> list[PositionLedger]:
    return list(
        PositionLedger.objects.filter(follower_id=follower_id, detached=False)
        .exclude(net_quantity=0)
        .order_by("exchange", "trading_symbol", "product")
    )


def in_flight(follower_id: int) -> Q:
    """The follower's copies still on their way: unsent, being sent, or working at the
    broker (accepted or unknown, not final)."""
    return Q(follower_id=follower_id) & (
        Q(status__in=[Status.PENDING, Status.SENDING])
        | Q(status__in=[Status.SUCCESS, Status.UNKNOWN], broker_final=False)
    )


def has_in_flight(follower_id: int) -> bool:
    return CopyTrade.objects.filter(in_flight(follower_id)).exists()


def has_sending(follower_id: int) -> bool:
    """A copy of the follower is being sent right now (claimed, no outcome yet)."""
    return CopyTrade.objects.filter(follower_id=follower_id, status=Status.SENDING).exists()


def cancel_pending(follower_id: int, *, now: datetime, intent: str | None = None) -> list[int]:
    """PENDING copies of the follower → CANCELLED (conditional: a row the copier claimed
    first is left alone), each with its transition."""
    rows = CopyTrade.objects.filter(follower_id=follower_id, status=Status.PENDING)
    if intent is not None:
        rows = rows.filter(intent=intent)
    ids = list(rows.values_list("pk", flat=True))
    cancelled = [
        pk
        for pk in ids
        if transitions.move(
            pk,
            from_statuses=[Status.PENDING],
            to=Status.CANCELLED,
            at=now,
            note=ENTRY_CANCELLED_TEXT,
            reason_code=ENTRY_CANCELLED_REASON,
            reason=ENTRY_CANCELLED_TEXT,
        )
    ]
    return cancelled


def _flatten_order(
    follower: Follower, position: PositionLedger, quantity: int, actor: User, now: datetime
) -> tuple[MasterOrder, MasterOrderEvent]:
    """The record of one flatten request: a manual master order and its accepted event
    (outcome already set, so the manual planner never fans it out to other followers)."""
    return request_order(
        master_id=follower.master_id,
        prefix=FLATTEN_PREFIX,
        key={"exchange": position.exchange, "token": position.token, "product": position.product},
        trading_symbol=position.trading_symbol,
        side="SELL" if position.net_quantity > 0 else "BUY",
        quantity=quantity,
        status_label="flatten",
        outcome_note=FLATTEN_OUTCOME_NOTE.format(name=follower.display_name, count=0),
        now=now,
        requested_by=actor,
    )


def flatten(*, follower: Follower, actor: User, now: datetime) -> list[int]:
    """Write the exits that flatten the follower's open copied positions (call inside the
    deactivation's transaction; no network). Returns the ids of the exit rows written.

    Each exit takes the whole position less what exits already in flight will take, never
    more than the ledger holds (the claim checks the ledger again)."""
    cancel_pending(follower.pk, now=now, intent=CopyTrade.Intent.ENTRY)
    written: list[int] = []
    ctx = CheckContext(
        kill_switch=False,
        now=now,
        round_the_clock=calendar.round_the_clock_from_settings(),
    )
    for position in _open_ledger(follower.pk):
        states = decide.load_followers(
            follower.master_id,
            exchange=position.exchange,
            token=position.token,
            product=position.product,
            follower_id=follower.pk,
        )
        if not states:
            continue
        state = states[0]
        # Size from the ledger and the exits already on their way, never from entries in
        # flight (an entry that fills later is left for a second flatten or a detach).
        state.in_flight = _exits_in_flight(follower.pk, position)
        base = state.effective
        if base == 0 or (base > 0) != (position.net_quantity > 0):
            continue
        order, event = _flatten_order(follower, position, abs(base), actor, now)
        plan = decide.Plan(event, order, now, now)
        decide._add_exit(
            plan,
            state,
            facts=decide.order_facts(order, None),
            master_before=base,
            reduce_qty=abs(base),
            follower_base=base,
            already=0,
            ctx=ctx,
            late=None,
            order_type="MARKET",
            price=None,
            trigger=None,
        )
        recorded = plan.save()
        MasterOrderEvent.objects.filter(pk=event.pk).update(
            outcome_note=FLATTEN_OUTCOME_NOTE.format(
                name=follower.display_name, count=len(recorded.copy_trade_ids)
            )[:300]
        )
        written += recorded.copy_trade_ids
    return written


def _exits_in_flight(follower_id: int, position: PositionLedger) -> int:
    """Signed remaining quantity of the follower's exits of this position still working."""
    total = 0
    for side, quantity, applied in CopyTrade.objects.filter(
        follower_id=follower_id,
        exchange=position.exchange,
        token=position.token,
        product=position.product,
        intent=CopyTrade.Intent.EXIT,
        action=CopyTrade.Action.PLACE,
        status__in=decide.IN_FLIGHT,
        broker_final=False,
    ).values_list("side", "quantity", "ledger_quantity"):
        total += (1 if side == "BUY" else -1) * max(quantity - applied, 0)
    return total


def flatten_exits(follower_id: int) -> list[CopyTrade]:
    """The exits written by flattening this follower (newest first), for its pages."""
    return list(
        CopyTrade.objects.filter(
            follower_id=follower_id,
            event__master_order__broker_order_id__startswith=FLATTEN_PREFIX,
        ).order_by("-decided_at", "-pk")
    )


def detach(follower_id: int) -> int:
    """Mark the follower's open ledger rows detached (no longer tracked, exited or
    reconciled); their reserved exits are forgotten with them. Returns the rows marked."""
    return (
        PositionLedger.objects.filter(follower_id=follower_id, detached=False)
        .exclude(net_quantity=0)
        .update(detached=True, exit_reserved=0)
    )


def ready_to_finish() -> list[int]:
    """Deactivating followers whose flatten settled: nothing in flight, a flat ledger."""
    ready = []
    for pk in Follower.objects.filter(is_active=True, deactivating_at__isnull=False).values_list(
        "pk", flat=True
    ):
        if has_in_flight(pk) or _open_ledger(pk):
            continue
        ready.append(pk)
    return ready


def finish_deactivations() -> list[int]:
    """Complete every deactivation whose flatten settled; returns the followers finished."""
    from accounts.services import complete_deactivation

    return [pk for pk in ready_to_finish() if complete_deactivation(follower_id=pk)]


@jobs.periodic("deactivations", every=DEACTIVATION_CHECK_SECONDS)
async def deactivations(copier: Copier) -> None:
    """Copier job: dispatch flatten exits at once and finish settled deactivations."""
    await copier.db(finish_deactivations)
