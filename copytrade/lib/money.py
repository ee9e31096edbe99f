"""Money helpers: parse what brokers send, round prices to ticks, order values, INR display.

Money is ``Decimal`` everywhere. Floats are accepted only at the edge (JSON numbers from a
broker) and converted through their shortest ``repr`` (``0.1`` → ``Decimal("0.1")``, not
``0.1000000000000000055…``).
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Literal

__all__ = [
    "PLACEHOLDERS",
    "BrokerNumberError",
    "TickRounding",
    "format_inr",
    "order_value",
    "parse_decimal",
    "parse_quantity",
    "quantize_money",
    "round_price_for_side",
    "round_to_tick",
]

#: Strings brokers send for "no value" (AliceBlue: "--" for no rejection reason, "NA" for
#: no exchange order id). Compared case-insensitively after trimming.
PLACEHOLDERS = frozenset({"", "-", "--", "---", "na", "n/a", "nan", "null", "none", "nil"})

_PAISA = Decimal("0.01")


class BrokerNumberError(ValueError):
    """A value that should be a number and is not (and is not a known placeholder)."""


def parse_decimal(value: object, *, default: Decimal | None = None) -> Decimal | None:
    """Parse a broker number into a ``Decimal``.

    Accepts ``Decimal``, ``int``, ``float`` (via ``repr``), and strings with thousands
    separators, surrounding spaces, a leading ``+``, or a rupee sign: ``"299,280.00"``,
    ``" -1,234.5 "``, ``"₹12,34,567.89"``, ``"00.00"`` (→ ``Decimal("0.00")``).

    Returns ``default`` (``None`` unless given) for ``None`` and the placeholders in
    ``PLACEHOLDERS`` (``"--"``, ``"NA"``, ``""`` …).

    Raises ``BrokerNumberError`` for anything else (``"abc"``, ``"1.2.3"``, NaN, ±infinity,
    booleans): a malformed number is an error to report, never silently zero.
    """
    if value is None:
        return default
    if isinstance(value, bool):
        raise BrokerNumberError(f"not a number: {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        return Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise BrokerNumberError(f"not a finite number: {value!r}")
        return Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if text.lower() in PLACEHOLDERS:
            return default
        cleaned = text.replace(",", "").replace("₹", "").replace(" ", "")
        if cleaned.startswith("+"):
            cleaned = cleaned[1:]
        if not cleaned or not _looks_numeric(cleaned):
            raise BrokerNumberError(f"not a number: {value!r}")
        try:
            result = Decimal(cleaned)
        except InvalidOperation as exc:  # pragma: no cover - _looks_numeric guards this
            raise BrokerNumberError(f"not a number: {value!r}") from exc
    else:
        raise BrokerNumberError(f"not a number: {type(value).__name__} {value!r}")
    if not result.is_finite():
        raise BrokerNumberError(f"not a finite number: {value!r}")
    return result


def _looks_numeric(text: str) -> bool:
    # Plain decimal notation only (digits, one point, optional leading minus, optional
    # exponent): Decimal() alone would also take "Infinity", "NaN" and "1_000".
    body = text[1:] if text.startswith("-") else text
    mantissa, _, exponent = body.lower().partition("e")
    if exponent:
        exp = exponent[1:] if exponent[0] in "+-" else exponent
        if not exp.isdigit():
            return False
    whole, _, frac = mantissa.partition(".")
    if not (whole or frac):
        return False
    return (not whole or whole.isdigit()) and (not frac or frac.isdigit())


def parse_quantity(value: object, *, default: int | None = None) -> int | None:
    """Parse a broker quantity (``"10"``, ``10``, ``"1,200"``, ``10.0``, ``"-5"``) into an int.

    Placeholders give ``default``; a fractional quantity (``"2.5"``) or garbage raises
    ``BrokerNumberError``.
    """
    number = parse_decimal(value, default=None)
    if number is None:
        return default
    if number != number.to_integral_value():
        raise BrokerNumberError(f"not a whole quantity: {value!r}")
    return int(number)


def quantize_money(amount: Decimal, places: int = 2) -> Decimal:
    """Round an amount half-up to ``places`` decimals (paise by default)."""
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


# --- Ticks -------------------------------------------------------------------------------------
class TickRounding(StrEnum):
    DOWN = "down"
    UP = "up"
    NEAREST = "nearest"  # ties go up (half-up)


def round_to_tick(price: Decimal, tick: Decimal, mode: TickRounding | str) -> Decimal:
    """Round ``price`` to a multiple of ``tick`` (``DOWN``, ``UP`` or ``NEAREST``).

    The result carries the tick's decimal places: ``round_to_tick(Decimal("101.234"),
    Decimal("0.05"), "down") == Decimal("101.20")``. Works for any positive tick, including
    ones that are not powers of ten (0.05, 0.25, 2.5).
    """
    if not isinstance(price, Decimal) or not isinstance(tick, Decimal):
        raise TypeError("price and tick must be Decimal")
    if not price.is_finite() or not tick.is_finite() or tick <= 0:
        raise ValueError(f"invalid price {price} or tick {tick}")
    mode = TickRounding(mode)
    rounding = {
        TickRounding.DOWN: ROUND_FLOOR,
        TickRounding.UP: ROUND_CEILING,
        TickRounding.NEAREST: ROUND_HALF_UP,
    }[mode]
    ticks = (price / tick).to_integral_value(rounding=rounding)
    result = ticks * tick
    exponent = tick.normalize().as_tuple().exponent
    places = max(0, -exponent) if isinstance(exponent, int) else 0
    return result.quantize(Decimal(1).scaleb(-places))


def round_price_for_side(price: Decimal, tick: Decimal, side: Literal["BUY", "SELL"]) -> Decimal:
    """Round a computed limit price to the tick, never to the follower's disadvantage.

    A BUY rounds **down** (never pay more than the computed price) and a SELL rounds **up**
    (never sell for less). Mirrored prices already on the tick are unchanged; this matters
    for computed prices (a market order converted to a protective limit, a tick-size change
    between the master's order and the copy). The cost is that a follower's limit may sit
    one tick less aggressive than the computed price and fill a little less often.
    """
    if side == "BUY":
        return round_to_tick(price, tick, TickRounding.DOWN)
    if side == "SELL":
        return round_to_tick(price, tick, TickRounding.UP)
    raise ValueError(f"side must be BUY or SELL, got {side!r}")


# --- Order value -------------------------------------------------------------------------------
def order_value(quantity: int, price: Decimal, *, price_multiplier: Decimal | int = 1) -> Decimal:
    """The notional value of an order, exactly: ``quantity * price * price_multiplier``.

    ``price_multiplier`` is the rupee value of one quantity unit per rupee of price: 1 when
    the price is quoted per quantity unit (equities, NSE/BSE derivatives, and MCX contracts
    whose quoted price unit is the unit the contract master counts, e.g. CRUDEOIL: barrels).
    Some MCX contracts quote in a different unit than they count (GOLD: price per 10 g, while
    AliceBlue's ``Board Lot Qty`` reads 1 for a 1 kg lot), so a caller valuing those must pass
    the conversion (100 for GOLD); the contract master does not carry it.
    """
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
        raise ValueError(f"quantity must be a non-negative int, got {quantity!r}")
    if not isinstance(price, Decimal) or not price.is_finite():
        raise TypeError("price must be a finite Decimal")
    return quantity * price * Decimal(price_multiplier)


# --- Display -----------------------------------------------------------------------------------
def format_inr(amount: Decimal | int, *, places: int = 2, symbol: bool = False) -> str:
    """Format an amount with Indian digit grouping: ``1234567.891`` → ``"12,34,567.89"``.

    The last three digits form a group, then groups of two (lakh, crore). Rounds half-up to
    ``places`` decimals; ``symbol=True`` prefixes ``₹`` (after the minus sign).
    """
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise TypeError(f"amount must be Decimal or int, got {type(amount).__name__}")
    value = Decimal(amount)
    if not value.is_finite():
        raise ValueError(f"cannot format {amount}")
    rounded = (
        quantize_money(value, places) if places > 0 else value.quantize(Decimal(1), ROUND_HALF_UP)
    )
    negative = rounded < 0
    text = format(abs(rounded), "f")
    whole, _, frac = text.partition(".")
    if len(whole) > 3:
        head, tail = whole[:-3], whole[-3:]
        pairs: list[str] = []
        while len(head) > 2:
            pairs.insert(0, head[-2:])
            head = head[:-2]
        if head:
            pairs.insert(0, head)
        whole = ",".join([*pairs, tail])
    result = whole + (f".{frac}" if frac else "")
    if symbol:
        result = "₹" + result
    return f"-{result}" if negative and rounded != 0 else result
