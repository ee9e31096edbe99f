"""Writes on trading records by people (the copier's own writes live with the engine).

`cancel_copy_trade`: a person may cancel only a PENDING copy trade, with a conditional UPDATE
(PENDING -> CANCELLED, row count checked) in one transaction with its transition row and its
audit row. It races the copier's claim (PENDING -> SENDING, also conditional): whichever
UPDATE commits first wins, the other changes no row. A cancel that lost says so; it never
touches a copy trade that is being or has been sent.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from trading.audit import record_audit
from trading.models import CopyTrade, CopyTradeTransition

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
