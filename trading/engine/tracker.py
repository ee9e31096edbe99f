"""Detection: turn observed master order snapshots (push frames, order-book polls) into one
deduplicated stream of `MasterOrderEvent`s.

Both feeds hand every snapshot they see to `implied_events(row, known)`, a pure function that
says which events the snapshot implies that are not yet recorded:

    accepted      the broker took the order (open, trigger pending, AMO received, complete,
                  or anything with a fill); never for a pending or rejected order
    modified      quantity, price, trigger or order type changed on an accepted order
                  (dedupe key "<n>:<digest>", n = modifications so far + 1)
    partial_fill  / filled: the cumulative filled quantity grew (dedupe key = that quantity)
    cancelled     / rejected

The unique constraint (master_order, kind, dedupe_key) makes push + poll, and two copiers,
idempotent: whoever inserts first wins; the other's transaction rolls back and, re-reading,
finds nothing new. `record_observation` (in `trading.engine.decide`) runs that transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from trading.brokers.aliceblue.types import OrderRow, OrderStatus, OrderType
from trading.models import EventKind, MasterOrder, MasterOrderEvent

ACCEPTED = EventKind.ACCEPTED.value
MODIFIED = EventKind.MODIFIED.value
PARTIAL = EventKind.PARTIALLY_FILLED.value
FILLED = EventKind.FILLED.value
CANCELLED = EventKind.CANCELLED.value
REJECTED = EventKind.REJECTED.value

#: Working states: accepted by the broker and not final.
WORKING = frozenset({OrderStatus.OPEN, OrderStatus.TRIGGER_PENDING, OrderStatus.AMO_RECEIVED})


@dataclass(frozen=True)
class Params:
    """What a modification can change."""

    quantity: int
    price: Decimal | None
    trigger_price: Decimal | None
    order_type: str

    def digest(self) -> str:
        text = f"{self.quantity}|{self.price}|{self.trigger_price}|{self.order_type}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _price(value: Decimal | None) -> Decimal | None:
    if value is None or value == 0:
        return None
    return value.normalize()


def params_of(
    quantity: int, price: Decimal | None, trigger: Decimal | None, order_type: str
) -> Params:
    """Normalised parameters: market orders carry no price, non-stop orders no trigger."""
    price_out = _price(price) if order_type in (OrderType.LIMIT, OrderType.SL) else None
    trigger_out = _price(trigger) if order_type in (OrderType.SL, OrderType.SLM) else None
    return Params(quantity, price_out, trigger_out, order_type)


@dataclass(frozen=True)
class KnownOrder:
    """What is stored about one master order: its last snapshot and its recorded events."""

    params: Params
    filled_quantity: int
    events: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    @property
    def accepted(self) -> bool:
        return (ACCEPTED, "") in self.events

    @property
    def modify_count(self) -> int:
        return sum(1 for kind, _ in self.events if kind == MODIFIED)


@dataclass(frozen=True)
class EventSpec:
    kind: str
    dedupe_key: str
    broker_time: datetime | None


def filled_of(row: OrderRow) -> int:
    """The cumulative filled quantity (a COMPLETE order is filled even if the field says 0)."""
    if row.status == OrderStatus.COMPLETE:
        return max(row.filled_quantity, row.quantity)
    return max(row.filled_quantity, 0)


def row_params(row: OrderRow) -> Params:
    order_type = row.order_type.value if row.order_type is not None else ""
    return params_of(row.quantity, row.price, row.trigger_price, order_type)


def implied_events(row: OrderRow, known: KnownOrder | None) -> list[EventSpec]:
    """The events `row` implies that `known` has not recorded yet, in causal order."""
    events = known.events if known is not None else frozenset()
    status = row.status
    filled = filled_of(row)
    out: list[EventSpec] = []
    when_accepted = row.order_time or row.exchange_time
    when_changed = row.exchange_time or row.order_time

    def want(kind: str, key: str, at: datetime | None) -> None:
        if (kind, key) not in events and all(
            (spec.kind, spec.dedupe_key) != (kind, key) for spec in out
        ):
            out.append(EventSpec(kind, key, at))

    if status in (OrderStatus.PENDING, OrderStatus.UNKNOWN) and filled == 0:
        return out  # not accepted yet (or a spelling we do not know): wait
    was_accepted = (ACCEPTED, "") in events
    accepted_now = status.is_accepted or filled > 0
    if accepted_now and not was_accepted:
        want(ACCEPTED, "", when_accepted)
    if was_accepted and known is not None and status != OrderStatus.REJECTED:
        new = row_params(row)
        if new != known.params and new.quantity > 0:
            count = known.modify_count + 1
            want(MODIFIED, f"{count}:{new.digest()}", when_changed)
    previous_fill = known.filled_quantity if known is not None else 0
    if filled > previous_fill:
        done = status == OrderStatus.COMPLETE or filled >= row.quantity
        want(FILLED if done else PARTIAL, str(filled), when_changed)
    if status == OrderStatus.CANCELLED:
        want(CANCELLED, "", when_changed)
    elif status == OrderStatus.REJECTED:
        want(REJECTED, "", when_changed)
    return out


def load_known(master_id: int, broker_order_ids: Iterable[str]) -> dict[str, KnownOrder]:
    """The stored state of these master orders (two queries)."""
    ids = list(dict.fromkeys(broker_order_ids))
    orders = {
        o.pk: o
        for o in MasterOrder.objects.filter(master_id=master_id, broker_order_id__in=ids).only(
            "pk",
            "broker_order_id",
            "quantity",
            "price",
            "trigger_price",
            "order_type",
            "filled_quantity",
        )
    }
    events: dict[int, set[tuple[str, str]]] = {pk: set() for pk in orders}
    for order_id, kind, key in MasterOrderEvent.objects.filter(
        master_order_id__in=list(orders)
    ).values_list("master_order_id", "kind", "dedupe_key"):
        events[order_id].add((kind, key))
    return {
        o.broker_order_id: KnownOrder(
            params=params_of(o.quantity, o.price, o.trigger_price, o.order_type),
            filled_quantity=o.filled_quantity,
            events=frozenset(events[o.pk]),
        )
        for o in orders.values()
    }


def pending_changes(master_id: int, rows: Iterable[OrderRow]) -> list[OrderRow]:
    """The rows (of one snapshot) that imply events not recorded yet (read-only)."""
    rows = [r for r in rows if r.broker_order_id]
    known = load_known(master_id, (r.broker_order_id for r in rows))
    return [r for r in rows if implied_events(r, known.get(r.broker_order_id))]
