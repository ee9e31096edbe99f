"""Follower order tracking: what became of each copy at the follower's broker.

The copier feeds every follower order snapshot it sees (order-notify push frames and
budgeted order-book polls of accounts with open copies) to `apply_follower_rows`, which, in
one transaction per batch:

* matches each order to its copy trade by broker order id, or by tag (a push frame can beat
  the place acknowledgement; an UNKNOWN copy may appear late);
* records broker status, filled quantity, average price, rejection reason and exchange time,
  and the slippage against the master's average fill price;
* applies new fills to the position ledger once (`ledger.apply_fill`, idempotent);
* turns a SUCCESS that the exchange later REJECTED into FAILED, and an UNKNOWN that appears
  into SUCCESS (or FAILED) — each with its transition — and releases what an exit had
  reserved in the ledger once the order is final;
* reports **hand trades** (`hand_fills`): filled orders that match no copy trade at all (not
  ours) on an instrument where the follower holds a copied position; the copier reconciles
  that account at once (a hand close must be out of the ledger before the master's exit).

Rows still SENDING belong to the sender: their fills are applied, their status is not touched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F, Q

from copytrade.lib import clock
from trading.brokers.aliceblue.types import OrderRow, OrderStatus
from trading.engine import alerts, ledger, transitions
from trading.engine.reasons import Reason, message
from trading.engine.tracker import filled_of
from trading.models import CopyTrade, Follower, PositionLedger

logger = logging.getLogger("trading.engine.tracking")

Status = CopyTrade.Status
FINAL = (OrderStatus.COMPLETE, OrderStatus.CANCELLED, OrderStatus.REJECTED)
TRACKED = (Status.SENDING, Status.SUCCESS, Status.UNKNOWN)


@dataclass
class TrackResult:
    matched: int = 0
    changed: list[int] = field(default_factory=list)
    filled: int = 0  # quantity applied to ledgers
    status_changes: list[tuple[int, str, str]] = field(default_factory=list)
    #: (broker account id, order id or tag, filled quantity) of hand trades (`hand_fills`).
    hand_fills: list[tuple[int, str, int]] = field(default_factory=list)


#: Copies are tracked for a day at most (orders are DAY orders; an UNKNOWN copy that never
#: appeared stays UNKNOWN for a person to look at, not polled for ever).
TRACK_FOR = timedelta(days=1)


def _open(now: datetime) -> Q:
    return Q(status__in=TRACKED, broker_final=False, decided_at__gte=now - TRACK_FOR)


def open_copy_count(follower_id: int, *, now: datetime | None = None) -> int:
    """Copies whose broker order may still change (the poll runs while this is > 0)."""
    return CopyTrade.objects.filter(_open(now or clock.now()), follower_id=follower_id).count()


def accounts_with_open_copies(*, now: datetime | None = None) -> list[int]:
    """Broker account ids of followers with copies to track."""
    return list(
        CopyTrade.objects.filter(_open(now or clock.now()))
        .values_list("follower__user__broker_account__pk", flat=True)
        .distinct()
    )


def hand_fills(
    account_id: int, follower_id: int, rows: Sequence[OrderRow]
) -> list[tuple[int, str, int]]:
    """Orders with fills that match no copy trade of the follower (any status or action: not
    ours) on an instrument where it holds a copied position (a non-zero, non-detached ledger
    row): hand trades that may have closed copied shares. At most two indexed reads, none
    when no order has a fill."""
    filled = [r for r in rows if filled_of(r) > 0 and (r.broker_order_id or r.tag.strip())]
    if not filled:
        return []
    held = list(
        PositionLedger.objects.filter(follower_id=follower_id, detached=False)
        .exclude(net_quantity=0)
        .values_list("exchange", "token", "trading_symbol")
    )
    filled = [
        r
        for r in filled
        if any(
            r.exchange == e and ((t and r.token == t) or r.trading_symbol == s) for e, t, s in held
        )
    ]
    if not filled:
        return []
    ids = [r.broker_order_id for r in filled if r.broker_order_id]
    tags = [r.tag.strip().upper() for r in filled if r.tag.strip()]
    ours_ids: set[str] = set()
    ours_tags: set[str] = set()
    for order_id, tag in (
        CopyTrade.objects.filter(follower_id=follower_id)
        .filter(Q(broker_order_id__in=ids) | Q(tag__in=tags))
        .values_list("broker_order_id", "tag")
    ):
        ours_ids.add(order_id)
        ours_tags.add(tag.upper())
    return [
        (account_id, r.broker_order_id or r.tag.strip().upper(), filled_of(r))
        for r in filled
        if not (r.broker_order_id and r.broker_order_id in ours_ids)
        and not (r.tag.strip() and r.tag.strip().upper() in ours_tags)
    ]


def _match(rows: Sequence[OrderRow], follower_id: int) -> list[tuple[CopyTrade, OrderRow]]:
    by_id = {r.broker_order_id: r for r in rows if r.broker_order_id}
    by_tag = {r.tag.strip().upper(): r for r in rows if r.tag and r.tag.strip()}
    if not by_id and not by_tag:
        return []
    candidates = (
        CopyTrade.objects.filter(follower_id=follower_id, action=CopyTrade.Action.PLACE)
        .filter(Q(broker_order_id__in=list(by_id)) | Q(tag__in=list(by_tag)))
        .filter(status__in=TRACKED)
        .select_related("event__master_order")
    )
    out = []
    for ct in candidates:
        row = by_id.get(ct.broker_order_id) if ct.broker_order_id else None
        if row is None:
            row = by_tag.get(ct.tag.upper())
        if row is None:
            continue
        out.append((ct, row))
    return out


def apply_follower_rows(
    account_id: int, rows: Sequence[OrderRow], *, now: datetime | None = None
) -> TrackResult:
    """Record what the follower's broker says about its copies (see the module docstring);
    several snapshots of one order are applied in the order given (`_match_in_order`)."""
    return apply_follower_batch([(account_id, rows)], now=now)


def apply_follower_batch(
    batch: Sequence[tuple[int, Sequence[OrderRow]]], *, now: datetime | None = None
) -> TrackResult:
    """`apply_follower_rows` for many accounts' order updates in one transaction (the push
    frames of a fan-out arrive together: one commit for all of them, not one each).

    The rows of one account are applied in the order given. If the batch fails, each
    account's rows are applied on their own, so one bad update cannot hold back the others
    (the last error is raised after the rest were applied)."""
    now = now or clock.now()
    rows_of: dict[int, list[OrderRow]] = {}
    for account_id, rows in batch:
        rows_of.setdefault(account_id, []).extend(rows)
    followers = dict(
        Follower.objects.filter(user__broker_account__pk__in=list(rows_of)).values_list(
            "user__broker_account__pk", "pk"
        )
    )
    result = TrackResult()
    try:
        with transaction.atomic():
            for account_id, rows in rows_of.items():
                follower_id = followers.get(account_id)
                if follower_id is None:
                    continue
                for ct, row in _match_in_order(rows, follower_id):
                    result.matched += 1
                    _apply_one(ct, row, now, result)
        for account_id, rows in rows_of.items():
            follower_id = followers.get(account_id)
            if follower_id is not None:
                result.hand_fills += hand_fills(account_id, follower_id, rows)
        return result
    except Exception:
        if len(rows_of) == 1:
            raise
        logger.exception("tracking batch failed; applying each account on its own")
    result = TrackResult()
    error: Exception | None = None
    for account_id, rows in rows_of.items():
        try:
            one = apply_follower_rows(account_id, rows, now=now)
        except Exception as exc:
            error = exc
            continue
        result.matched += one.matched
        result.changed.extend(one.changed)
        result.filled += one.filled
        result.status_changes.extend(one.status_changes)
        result.hand_fills.extend(one.hand_fills)
    if error is not None:
        raise error
    return result


def _match_in_order(
    rows: Sequence[OrderRow], follower_id: int
) -> Iterator[tuple[CopyTrade, OrderRow]]:
    """Several snapshots of the same order (open, then complete) each applied in turn: a
    snapshot only moves a copy forward, so applying every one in order is what applying them
    as they arrived would have done."""
    rounds: list[list[OrderRow]] = []
    seen: dict[str, int] = {}
    for row in rows:
        key = row.broker_order_id or row.tag.strip().upper()
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(row)
    for one_round in rounds:
        # one query per round (its orders are distinct), read only after the previous
        # round was applied: a generator, consumed while applying
        yield from _match(one_round, follower_id)


def _apply_one(ct: CopyTrade, row: OrderRow, now: datetime, result: TrackResult) -> None:
    filled = max(filled_of(row), ct.filled_quantity)
    average = row.average_price or ct.average_price
    if row.status == OrderStatus.COMPLETE and not row.filled_quantity:
        filled = max(filled, ct.quantity)
    applied = ledger.apply_fill(ct, filled, average)
    result.filled += applied
    fields: dict[str, Any] = {}
    if ct.filled_quantity != filled:
        fields["filled_quantity"] = filled
    if average is not None and average != ct.average_price:
        fields["average_price"] = average
    if row.raw_status and row.raw_status[:40] != ct.broker_status:
        fields["broker_status"] = row.raw_status[:40]
    if row.exchange_time and row.exchange_time != ct.exchange_time:
        fields["exchange_time"] = row.exchange_time
    if not ct.broker_order_id and row.broker_order_id:
        fields["broker_order_id"] = row.broker_order_id[:40]
    if row.rejection_reason and row.rejection_reason[:500] != ct.broker_error_message:
        fields["broker_error_message"] = row.rejection_reason[:500]
    master_avg: Decimal | None = ct.event.master_order.average_price
    if average is not None and master_avg:
        slip = (average - master_avg) if ct.side == "BUY" else (master_avg - average)
        if slip != ct.slippage:
            fields["slippage"] = slip
    if ct.status == Status.SENDING:
        if fields:
            transitions.update_fields(ct.pk, at=now, **fields)
            result.changed.append(ct.pk)
        return
    new_status = ct.status
    note = ""
    if row.status == OrderStatus.REJECTED and ct.status in (Status.SUCCESS, Status.UNKNOWN):
        new_status = Status.FAILED
        note = message(
            Reason.EXCHANGE_REJECTED, message=row.rejection_reason or row.raw_status or "rejected"
        )
        fields.update(reason_code=Reason.EXCHANGE_REJECTED.value, reason=note)
    elif ct.status == Status.UNKNOWN and row.status != OrderStatus.REJECTED:
        new_status = Status.SUCCESS
        note = f"found in the follower's order book by tag {ct.tag}"
        fields.update(reason_code="", reason=note, broker_error_message="")
    final = row.status in FINAL and not ct.broker_final
    if final:
        fields["broker_final"] = True
    if new_status != ct.status:
        moved = transitions.move(
            ct.pk, from_statuses=(ct.status,), to=new_status, at=now, note=note, **fields
        )
        if moved is None:
            return
        result.status_changes.append((ct.pk, ct.status, new_status))
        if new_status == Status.SUCCESS:
            alerts.resolve_unknown([ct.pk], now)
        elif new_status == Status.FAILED:
            alerts.raise_alert(
                kind=alerts.AlertKind.COPY_FAILED,
                master_id=ct.master_id,
                follower_id=ct.follower_id,
                copy_trade_id=ct.pk,
                message=note,
                at=now,
            )
    elif fields:
        if final:
            # the final flag is set once (conditional), so the release below happens once
            done = CopyTrade.objects.filter(pk=ct.pk, broker_final=False).update(
                broker_final=True, version=F("version") + 1, updated_at=now
            )
            fields.pop("broker_final")
            if not done:
                final = False
        if fields:
            transitions.update_fields(ct.pk, at=now, **fields)
    else:
        return
    result.changed.append(ct.pk)
    if final and ct.intent == CopyTrade.Intent.EXIT:
        unfilled = max(ct.quantity - filled, 0)
        ledger.release_exit(ct, unfilled)
