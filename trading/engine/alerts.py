"""Alerts: what the master must be told (an UNKNOWN copy, a failed copy, a waiting exit, a lost
feed). The copier writes `Alert` rows here, inside its own transactions; the notifications
engine (issue 5) sends them as a digest and sets ``notified_at``. Every alert is also logged
at WARNING/ERROR with its context (never a secret).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from django.db import connection

from copytrade.lib import clock
from trading.models import Alert, AlertKind

logger = logging.getLogger("trading.engine.alerts")

__all__ = ["AlertKind", "daily_loss_reached", "raise_alert", "resolve_unknown"]

_ERRORS = {AlertKind.UNKNOWN_ORDER, AlertKind.FEED_LOST}


def raise_alert(
    *,
    kind: AlertKind,
    master_id: int,
    message: str,
    at: datetime,
    follower_id: int | None = None,
    copy_trade_id: int | None = None,
) -> Alert:
    """Record an alert (call inside the transaction that made the change it is about)."""
    alert = Alert.objects.create(
        kind=kind,
        master_id=master_id,
        follower_id=follower_id,
        copy_trade_id=copy_trade_id,
        message=message[:500],
        created_at=at,
    )
    level = logging.ERROR if kind in _ERRORS else logging.WARNING
    logger.log(
        level,
        "alert %s",
        kind.value,
        extra={
            "ctx": {
                "master": master_id,
                "follower": follower_id,
                "copy_trade": copy_trade_id,
                "message": message[:200],
            }
        },
    )
    return alert


def resolve_unknown(copy_trade_ids: Sequence[int], at: datetime) -> int:
    """An UNKNOWN copy was found after all: its alert is resolved."""
    if not copy_trade_ids:
        return 0
    return Alert.objects.filter(
        copy_trade_id__in=list(copy_trade_ids),
        kind=AlertKind.UNKNOWN_ORDER,
        resolved_at__isnull=True,
    ).update(resolved_at=at)


_DAILY_LOSS_LOCK = 0x0C7D1055  # the advisory lock namespace of "daily loss alerted"
DAILY_LOSS_MESSAGE = (
    "Daily-loss limit reached: {pnl} today against a limit of {limit}; its entries are "
    "skipped for the rest of the day (exits still go)."
)


def daily_loss_reached(
    *, master_id: int, reached: dict[int, tuple[object, object]], at: datetime
) -> list[int]:
    """A DAILY_LOSS alert for each follower (id -> (today's P&L, limit)) that has none yet
    this IST trading day (call inside the decision's transaction). Returns the followers
    alerted now."""
    if not reached:
        return []
    day_start = datetime.combine(clock.today_ist(), datetime.min.time(), tzinfo=clock.IST)

    def alerted_today() -> set[int]:
        return set(
            Alert.objects.filter(
                kind=AlertKind.DAILY_LOSS, follower_id__in=list(reached), created_at__gte=day_start
            ).values_list("follower_id", flat=True)
        )

    already = alerted_today()
    if set(reached) <= already:
        return []
    if connection.vendor == "postgresql":
        # Two copiers deciding for the same follower at once: one at a time from here (a
        # transaction-scoped advisory lock, taken after the caller's own row writes, in
        # follower order); SQLite's IMMEDIATE transactions are serial already.
        with connection.cursor() as cursor:
            for follower_id in sorted(set(reached) - already):
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)", [_DAILY_LOSS_LOCK, follower_id]
                )
        already = alerted_today()
    alerted = []
    for follower_id, (pnl, limit) in sorted(reached.items()):
        if follower_id in already:
            continue
        raise_alert(
            kind=AlertKind.DAILY_LOSS,
            master_id=master_id,
            follower_id=follower_id,
            message=DAILY_LOSS_MESSAGE.format(pnl=pnl, limit=limit),
            at=at,
        )
        alerted.append(follower_id)
    return alerted
