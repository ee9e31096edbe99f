"""Entry checks, in DESIGN.md's order, each with a named reason (pure: no I/O, no clock).

    result = check_entry(follower, order, context)
    if result.reason: SKIPPED with result.reason / result.message
    else:             result.sizing.quantity, split into legs

Order (DESIGN.md "Entry checks"): follower active and not paused (and the master's kill
switch); broker session ready for today; instrument allowed; product allowed; max quantity
(sizing: floor, cap, at least one lot); max order value (quantity x limit price, trigger
price for stop-market orders, or a quote's last traded price for market orders); max daily
loss (today's realised + unrealised P&L); order type supported (REGULAR and AMO; BO, CO,
GTT, MTF are not); market open for that exchange (AMO: AMO window).

Exits never come here: `decide` sizes them against the position ledger and no entry check
applies to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from copytrade.lib import calendar
from copytrade.lib.money import format_inr
from copytrade.lib.sizing import EntrySize, SkipReason, size_entry
from trading.engine.reasons import Reason, message

SUPPORTED_COMPLEXITIES = frozenset({"REGULAR", "AMO"})
NO_PRICE = "The order value could not be checked: no price for the market order (the quote failed)."


@dataclass(frozen=True)
class FollowerView:
    """What the checks need to know about one follower (read once per event)."""

    id: int
    display_name: str
    lot_multiplier: Decimal
    max_quantity: int
    max_order_value: Decimal
    max_daily_loss: Decimal
    allowed_instruments: tuple[str, ...]
    allowed_product_types: tuple[str, ...]
    is_paused: bool
    account_id: int | None
    session_ready: bool
    #: Today's realised + unrealised P&L of the follower's account, None if not known yet.
    daily_pnl: Decimal | None


@dataclass(frozen=True)
class OrderView:
    """The order to copy, as the checks see it."""

    exchange: str
    token: str
    trading_symbol: str
    #: Underlying symbol from the contract master ("INFY", "NIFTY"); "" when unknown.
    symbol: str
    side: str
    order_type: str
    product: str
    complexity: str
    #: Instrument lot size and freeze quantity (None = instrument unknown / no freeze limit).
    lot_size: int | None
    freeze_quantity: int | None
    #: Price for the order value: (price, source) — limit | trigger | ltp | master_avg.
    value_price: Decimal | None
    value_price_source: str


@dataclass(frozen=True)
class CheckContext:
    kill_switch: bool
    now: datetime
    round_the_clock: bool


@dataclass(frozen=True)
class CheckResult:
    reason: Reason | None
    message: str
    sizing: EntrySize | None = None
    order_value: Decimal | None = None

    @property
    def passed(self) -> bool:
        return self.reason is None


def _fail(reason: Reason, sizing: EntrySize | None = None, **values: object) -> CheckResult:
    return CheckResult(reason, message(reason, **values), sizing)


def instrument_allowed(follower: FollowerView, order: OrderView) -> bool:
    """Allowed by underlying symbol and exchange ("NFO:NIFTY"); an empty list allows all."""
    if not follower.allowed_instruments:
        return True
    names = {order.trading_symbol.upper()}
    if order.symbol:
        names.add(order.symbol.upper())
    base = order.trading_symbol.upper().rsplit("-", 1)
    if len(base) == 2 and base[1] in ("EQ", "BE", "BZ", "SM", "ST"):
        names.add(base[0])
    wanted = {f"{order.exchange.upper()}:{name}" for name in names}
    return any(entry.strip().upper() in wanted for entry in follower.allowed_instruments)


def market_open(order: OrderView, ctx: CheckContext) -> tuple[bool, str]:
    """Whether the exchange takes this order now (AMO orders: the AMO window), and why not."""
    if order.complexity == "AMO":
        if calendar.amo_accepted(order.exchange, ctx.now) or ctx.round_the_clock:
            return True, ""
        status = calendar.market_phase(order.exchange, ctx.now)
        return False, f"after-market orders are not taken now ({status.detail})"
    status = calendar.market_phase(order.exchange, ctx.now, round_the_clock=ctx.round_the_clock)
    if status.phase == calendar.Phase.OPEN:
        return True, ""
    session = status.session
    if (
        status.phase == calendar.Phase.PRE_OPEN
        and session is not None
        and session.order_entry_end is not None
        and ctx.now < session.order_entry_end
    ):
        return True, ""  # pre-open order entry (NSE/BSE cash 09:00-09:08)
    return False, status.detail


def check_entry(
    follower: FollowerView,
    order: OrderView,
    master_quantity: int,
    ctx: CheckContext,
    *,
    sizing: EntrySize | None = None,
) -> CheckResult:
    """Run the entry checks in order; the first that fails names the reason.

    ``sizing`` replaces ``size_entry(master_quantity, ...)`` where the caller sized already
    (copy-fills mode sizes the cumulative fill and carries the residual)."""
    if follower.is_paused:
        return _fail(Reason.FOLLOWER_PAUSED)
    if ctx.kill_switch:
        return _fail(Reason.KILL_SWITCH)
    if follower.account_id is None:
        return _fail(Reason.NO_BROKER_ACCOUNT)
    if not follower.session_ready:
        return _fail(Reason.NEEDS_LOGIN)
    if not instrument_allowed(follower, order):
        return _fail(
            Reason.INSTRUMENT_NOT_ALLOWED, instrument=f"{order.exchange}:{order.trading_symbol}"
        )
    if order.product not in follower.allowed_product_types and order.complexity != "MTF":
        return _fail(Reason.PRODUCT_NOT_ALLOWED, product=order.product)
    if order.lot_size is None:
        return _fail(
            Reason.INSTRUMENT_UNKNOWN, instrument=f"{order.exchange}:{order.trading_symbol}"
        )
    if sizing is None:
        sizing = size_entry(
            master_quantity,
            follower.lot_multiplier,
            lot_size=order.lot_size,
            max_quantity=follower.max_quantity,
        )
    if sizing.skip_reason is SkipReason.MAX_QUANTITY_BELOW_LOT:
        return _fail(Reason.MAX_QUANTITY, sizing)
    if sizing.skip_reason is SkipReason.BELOW_ONE_LOT:
        return _fail(Reason.BELOW_ONE_LOT, sizing)
    value: Decimal | None = None
    if order.value_price is None:
        if order.complexity in SUPPORTED_COMPLEXITIES:
            return CheckResult(Reason.MAX_ORDER_VALUE, NO_PRICE, sizing)
    else:
        value = order.value_price * sizing.quantity
    if value is not None and value > follower.max_order_value:
        return CheckResult(
            Reason.MAX_ORDER_VALUE,
            message(
                Reason.MAX_ORDER_VALUE,
                value=format_inr(value, symbol=True),
                limit=format_inr(follower.max_order_value, symbol=True),
            ),
            sizing,
            value,
        )
    if follower.daily_pnl is not None and follower.daily_pnl <= -follower.max_daily_loss:
        return CheckResult(
            Reason.MAX_DAILY_LOSS,
            message(
                Reason.MAX_DAILY_LOSS,
                pnl=format_inr(follower.daily_pnl, symbol=True),
                limit=format_inr(follower.max_daily_loss, symbol=True),
            ),
            sizing,
            value,
        )
    if order.complexity not in SUPPORTED_COMPLEXITIES:
        return CheckResult(
            Reason.UNSUPPORTED_ORDER_TYPE,
            message(Reason.UNSUPPORTED_ORDER_TYPE, complexity=order.complexity),
            sizing,
            value,
        )
    is_open, detail = market_open(order, ctx)
    if not is_open:
        return CheckResult(
            Reason.MARKET_CLOSED,
            message(Reason.MARKET_CLOSED, exchange=order.exchange, detail=detail),
            sizing,
            value,
        )
    return CheckResult(None, "", sizing, value)
