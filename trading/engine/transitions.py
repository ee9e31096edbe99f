"""Status changes of copy trades: every change is a conditional UPDATE (it only happens from
the states it is allowed from) and writes a `CopyTradeTransition` in the same transaction.

Call these inside `transaction.atomic()`. They bump `CopyTrade.version` (the boards' change
marker) with every change they make.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db.models import F

from trading.models import CopyTrade

Status = CopyTrade.Status


def record(items: Iterable[tuple[int, str, str, str]], at: datetime) -> None:
    """Write transitions (copy trade id, from, to, note) at ``at`` in one statement."""
    from trading.engine import bulk

    bulk.insert_transitions(items, at)


def move(
    copy_trade_id: int,
    *,
    from_statuses: Sequence[str],
    to: str,
    at: datetime,
    note: str = "",
    **fields: Any,
) -> str | None:
    """Change one copy trade's status if it is in ``from_statuses``; write the transition.

    Returns the status it moved from, or None when it was not in an allowed state (someone
    else changed it first: the caller lost the race and must not act).
    """
    for old in from_statuses:
        changed = CopyTrade.objects.filter(pk=copy_trade_id, status=old).update(
            status=to, version=F("version") + 1, updated_at=at, **fields
        )
        if changed:
            if old != to:
                record([(copy_trade_id, old, to, note)], at)
            return old
    return None


def update_fields(copy_trade_id: int, *, at: datetime, **fields: Any) -> int:
    """Change fields the boards show (fill progress, broker status) without a status change."""
    return CopyTrade.objects.filter(pk=copy_trade_id).update(
        version=F("version") + 1, updated_at=at, **fields
    )
