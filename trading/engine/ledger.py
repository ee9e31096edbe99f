"""The position ledger: fills of copied orders per master x follower x instrument x product.

It is the only source for "how much may this follower sell". Two operations, both inside the
caller's transaction and both idempotent:

* `apply_fill(copy_trade, filled, average_price)` moves the position by the fill quantity
  not applied yet (``filled - ledger_quantity``, guarded by a conditional UPDATE on
  ``CopyTrade.ledger_quantity``), with realised P&L on the closed part.
* `reserve_exit` / `release_exit`: an exit is claimed only if the position, less what other
  in-flight exits already reserved, covers it (a conditional UPDATE), so two exits — or two
  copiers — can never sell more than the ledger holds.
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import F, Q
from django.db.models.functions import Greatest

from trading.models import CopyTrade, PositionLedger


def _key(ct: CopyTrade) -> dict[str, object]:
    return {
        "master_id": ct.master_id,
        "follower_id": ct.follower_id,
        "exchange": ct.exchange,
        "token": ct.token,
        "product": ct.product,
    }


def ledger_for(ct: CopyTrade) -> PositionLedger:
    row, _ = PositionLedger.objects.get_or_create(
        **_key(ct), defaults={"trading_symbol": ct.trading_symbol}
    )
    return row


def reserve_exit(ct: CopyTrade, quantity: int) -> bool:
    """Reserve ``quantity`` of the follower's position for an exit order (SELL reduces a long,
    BUY a short). False when the ledger does not cover it."""
    if quantity <= 0:
        return False
    rows = PositionLedger.objects.filter(**_key(ct), detached=False)
    if ct.side == "SELL":
        cover = Q(net_quantity__gte=F("exit_reserved") + quantity)
    else:
        cover = Q(net_quantity__lte=-(F("exit_reserved") + quantity))
    return bool(rows.filter(cover).update(exit_reserved=F("exit_reserved") + quantity))


def available_to_exit(ct: CopyTrade) -> int:
    """What an exit on ``ct``'s side could still take from the ledger (≥ 0)."""
    row = (
        PositionLedger.objects.filter(**_key(ct), detached=False)
        .values_list("net_quantity", "exit_reserved")
        .first()
    )
    if row is None:
        return 0
    net, reserved = row
    held = net if ct.side == "SELL" else -net
    return max(held - reserved, 0)


def release_exit(ct: CopyTrade, quantity: int) -> None:
    """Give back a reservation that will not fill (refused, rejected, cancelled, retried)."""
    if quantity <= 0:
        return
    PositionLedger.objects.filter(**_key(ct)).update(
        exit_reserved=Greatest(F("exit_reserved") - quantity, 0)
    )


def apply_fill(ct: CopyTrade, filled: int, average_price: Decimal | None) -> int:
    """Apply the part of ``filled`` (cumulative) not in the ledger yet; return that delta.

    ``average_price`` is the copy's cumulative average fill price (None if the broker did not
    say: the position moves, its value uses the order's price or 0).
    """
    applied = ct.ledger_quantity
    delta = filled - applied
    if delta <= 0:
        return 0
    moved = CopyTrade.objects.filter(pk=ct.pk, ledger_quantity=applied).update(
        ledger_quantity=filled
    )
    if not moved:
        return 0  # another feed or copier applied it first
    # The price of this increment: from the cumulative averages before and after.
    previous_avg = ct.average_price or Decimal(0)
    if average_price:
        value = average_price * filled - previous_avg * applied
        price = value / delta
    else:
        price = ct.price or Decimal(0)
    row = ledger_for(ct)
    row = PositionLedger.objects.select_for_update().get(pk=row.pk)
    signed = delta if ct.side == "BUY" else -delta
    net = row.net_quantity
    open_value = row.open_value
    realised = row.realised_pnl
    if net == 0 or (net > 0) == (signed > 0):
        open_value += price * signed
        net += signed
    else:
        closing = min(delta, abs(net))
        average_open = open_value / net
        direction = 1 if net > 0 else -1
        realised += (price - average_open) * closing * direction
        open_value -= average_open * closing * direction
        net += closing * -direction
        rest = delta - closing
        if rest:
            net += rest * -direction
            open_value = price * rest * -direction
        if net == 0:
            open_value = Decimal(0)
    row.net_quantity = net
    row.open_value = open_value
    row.realised_pnl = realised
    if ct.side == "BUY":
        row.buy_quantity += delta
        row.buy_value += price * delta
    else:
        row.sell_quantity += delta
        row.sell_value += price * delta
    fields = ["net_quantity", "open_value", "realised_pnl", "updated_at"]
    fields += ["buy_quantity", "buy_value"] if ct.side == "BUY" else ["sell_quantity", "sell_value"]
    if ct.intent == CopyTrade.Intent.EXIT:
        row.exit_reserved = max(row.exit_reserved - delta, 0)
        fields.append("exit_reserved")
    row.save(update_fields=fields)
    ct.ledger_quantity = filled
    return delta
