"""EXIT copies decided outside a master event's decision: a missed exit the master chose to
send (`feedloss`), a drift the close policy closes (`reconcile`).

They are ordinary PENDING ``place`` / ``exit`` CopyTrade rows with their first transition, so
they take the normal path: the copier's sweep claims them (the claim reserves the quantity in
the position ledger and cuts it to what the ledger holds, never more), sends, tracks the
fills. They are MARKET orders: the price of a master order found late (or of a position the
master no longer holds) is no longer a price to trade at. Call inside the caller's
transaction; no network here.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db.models import Max

from accounts.models import Follower, User
from copytrade.lib.sizing import split_legs
from trading.engine import tags, transitions
from trading.models import (
    Complexity,
    CopyTrade,
    EventKind,
    EventSource,
    MasterOrder,
    MasterOrderEvent,
    Validity,
)


def request_order(
    *,
    master_id: int,
    prefix: str,
    key: dict[str, str],
    trading_symbol: str,
    side: str,
    quantity: int,
    status_label: str,
    outcome_note: str,
    now: datetime,
    requested_by: User | None = None,
) -> tuple[MasterOrder, MasterOrderEvent]:
    """The record of an exit request that is not one of the master's own orders (a flatten,
    a reconciliation close): a manual MARKET master order ``<prefix><random>`` and its
    accepted event, outcome already set so the manual planner never fans it out to other
    followers. It never moves the master's position books."""
    order = MasterOrder(
        master_id=master_id,
        broker_order_id=f"{prefix}{uuid.uuid4().hex[:16].upper()}",
        manual=True,
        exchange=key["exchange"],
        token=key["token"],
        trading_symbol=trading_symbol,
        side=side,
        quantity=quantity,
        order_type="MARKET",
        product=key["product"],
        complexity=Complexity.REGULAR,
        validity=Validity.DAY,
        broker_status=status_label,
        status="OPEN",
        accepted_at=now,
        first_seen_at=now,
        requested_by=requested_by,
    )
    order.save(force_insert=True)
    event = MasterOrderEvent.objects.create(
        master_order=order,
        kind=EventKind.ACCEPTED,
        dedupe_key="",
        source=EventSource.MANUAL,
        broker_time=now,
        received_at=now,
        quantity=quantity,
        broker_status=status_label,
        outcome="copied",
        outcome_note=outcome_note[:300],
        copy_mode="",
    )
    return order, event


def held_in_ledger(*, master_id: int, follower_id: int, key: dict[str, str], side: str) -> int:
    """What an exit on ``side`` may still take from the follower's copied position (≥ 0)."""
    from trading.engine import ledger

    probe = CopyTrade(master_id=master_id, follower_id=follower_id, side=side, **key)
    return ledger.available_to_exit(probe)


def add_exit_copies(
    *,
    event: MasterOrderEvent,
    follower: Follower,
    key: dict[str, str],
    trading_symbol: str,
    side: str,
    quantity: int,
    master_quantity: int,
    lot_size: int,
    freeze: int | None,
    note: str,
    now: datetime,
    manual: bool,
    master_accepted_at: datetime | None = None,
) -> list[int]:
    """Write PENDING MARKET exit copies for ``quantity`` (freeze legs), each with its own
    leg number after the ones this event already has for the follower (the unique
    event x follower x leg) and its deterministic tag. Returns their ids."""
    if quantity <= 0:
        return []
    lot = max(lot_size or 1, 1)
    legs = split_legs(quantity, freeze, lot) if quantity % lot == 0 else (quantity,)
    last = CopyTrade.objects.filter(event=event, follower=follower).aggregate(m=Max("leg"))["m"]
    leg = -1 if last is None else last
    ids = []
    for leg_qty in legs:
        leg += 1
        row = CopyTrade.objects.create(
            event=event,
            master_id=follower.master_id,
            follower=follower,
            leg=leg,
            action=CopyTrade.Action.PLACE,
            intent=CopyTrade.Intent.EXIT,
            manual=manual,
            tag=tags.make_tag(event.pk, follower.pk, leg),
            exchange=key["exchange"],
            token=key["token"],
            trading_symbol=trading_symbol,
            side=side,
            order_type="MARKET",
            product=key["product"],
            master_quantity=master_quantity,
            quantity=leg_qty,
            lot_multiplier=follower.lot_multiplier,
            lot_size=lot,
            sizing_note=note[:200],
            status=CopyTrade.Status.PENDING,
            master_accepted_at=master_accepted_at,
            received_at=now,
            decided_at=now,
        )
        ids.append(row.pk)
    transitions.record([(pk, "", CopyTrade.Status.PENDING, note[:500]) for pk in ids], now)
    return ids
