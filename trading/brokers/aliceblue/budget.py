"""AliceBlue's request allowance, persisted and shared: 1,800 non-order requests per 15 minutes
per account (PROTOCOL.md §8). Orders (place/modify/cancel) are not limited and never counted.

One `RequestBudget` row per account and fixed 15-minute window (AliceBlue resets every 15
minutes; IST is UTC+5:30, so the windows start at :00/:15/:30/:45 in both zones). Every
caller — web process, copier, commands — consumes with one conditional UPDATE
(`used = used + n WHERE used + n <= limit`) on that row; the row is created with
get_or_create against the (account, window_start) unique constraint. Correct on SQLite
(no row locks needed) and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from copytrade.lib import budget as lib_budget
from copytrade.lib import clock
from trading.brokers.aliceblue.errors import BudgetExhausted
from trading.models import RequestBudget

WINDOW = lib_budget.WINDOW
DEFAULT_LIMIT = lib_budget.REQUESTS_PER_WINDOW
BUDGET_EXHAUSTED = "request budget used up for this 15-minute window"


def window_start(at: datetime) -> datetime:
    """The start of the 15-minute window holding `at` (aware, UTC): the same instants as
    `copytrade.lib.budget.window_start` (IST quarter hours)."""
    return lib_budget.window_start(at).astimezone(UTC)


def budget_limit() -> int:
    return int(getattr(settings, "ALICEBLUE_REQUEST_BUDGET", DEFAULT_LIMIT))


def consume(account_id: int, n: int = 1, *, op: str = "", now: datetime | None = None) -> int:
    """Take `n` requests from the account's current window; return what is left.

    Raises BudgetExhausted (with `retry_at`) when the window cannot cover `n`.
    """
    limit = budget_limit()
    at = now or clock.now()
    start = window_start(at)
    if n > limit:
        raise BudgetExhausted(BUDGET_EXHAUSTED, op=op, retry_at=start + WINDOW, limit=limit)
    rows = RequestBudget.objects.filter(account_id=account_id, window_start=start)
    updated = rows.filter(used__lte=limit - n).update(used=F("used") + n)
    if not updated:
        if not rows.exists():
            try:
                with transaction.atomic():
                    RequestBudget.objects.create(account_id=account_id, window_start=start)
                # old windows are of no use; keep the table small
                RequestBudget.objects.filter(
                    account_id=account_id, window_start__lt=start - timedelta(days=1)
                ).delete()
            except IntegrityError:
                pass  # another caller created it first
            updated = rows.filter(used__lte=limit - n).update(used=F("used") + n)
        if not updated:
            raise BudgetExhausted(BUDGET_EXHAUSTED, op=op, retry_at=start + WINDOW, limit=limit)
    used = rows.values_list("used", flat=True).first() or 0
    return max(limit - used, 0)


def remaining(account_id: int, *, now: datetime | None = None) -> int:
    start = window_start(now or clock.now())
    used = (
        RequestBudget.objects.filter(account_id=account_id, window_start=start)
        .values_list("used", flat=True)
        .first()
    )
    return budget_limit() - (used or 0)


class Budget:
    """The budget of one account, for a client: `consume(op)` / `await aconsume(op)`.

    The async form reaches the database through asgiref's single shared sync thread
    (`thread_sensitive=True`), never from the event loop.
    """

    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self._async_consume = sync_to_async(self._consume, thread_sensitive=True)

    def _consume(self, op: str) -> int:
        return consume(self.account_id, 1, op=op)

    def consume(self, op: str) -> int:
        return self._consume(op)

    async def aconsume(self, op: str) -> int:
        return await self._async_consume(op)
