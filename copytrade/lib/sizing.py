"""Copy sizing: how much a follower buys or sells for one master order (pure, exact maths).

DESIGN.md "Copy semantics" made exact. Every function here is pure (no I/O, no clock, no
database) and exact (integer and Decimal arithmetic, never floats).

Quantity units
--------------
Every quantity in this module (master quantity, follower quantity, ``max_quantity``,
``freeze_qty``, positions) is in the product's **quantity units**, the unit of
``Instrument.lot_size`` and ``Instrument.freeze_quantity``: pass those two straight through.

* NSE/BSE equities: units are shares, ``lot_size`` is 1.
* NFO/BFO/CDS/BCD derivatives: units are contract units (e.g. 65 = one NIFTY lot in 2026),
  ``lot_size`` is the units per lot. Results are whole multiples of ``lot_size``.
* MCX: also units. The contract-master import stores an MCX instrument with
  ``lot_size`` = units per lot (``Board Lot Qty`` in AliceBlue's 2024+ files, which put 1 in
  ``Lot Size``) and ``freeze_quantity`` in units, and the AliceBlue client converts to lots on
  the wire where the broker counts lots (CONTRACTS.md §4, trading/brokers/aliceblue/
  contracts.py). A follower's ``max_quantity`` is therefore in units for MCX too.

The maths is unit-agnostic: if a caller ever works in lots instead, pass ``lot_size=1`` and
every quantity (including ``max_quantity`` and ``freeze_qty``) in lots.

Entry:   ``size_entry``  → ``EntrySize``  (floor, cap, at-least-one, whole lots or SKIPPED)
Legs:    ``split_legs``  → tuple of leg quantities (freeze-quantity split)
Exit:    ``size_exit``   → ``ExitSize``   (proportional, whole lots, never oversell)
Reverse: ``split_reversal`` → ``ReversalSplit(exit_qty, entry_qty)``
Fills:   ``next_fill_increment`` → ``FillIncrement`` (copy-fills mode residual carry)
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Literal, NamedTuple

Side = Literal["BUY", "SELL"]
_CENT = Decimal("0.01")

__all__ = [
    "EntrySize",
    "ExitReason",
    "ExitSize",
    "FillIncrement",
    "ReversalSplit",
    "Side",
    "SkipReason",
    "next_fill_increment",
    "size_entry",
    "size_exit",
    "split_legs",
    "split_reversal",
]


class SkipReason(StrEnum):
    """Why an entry was sized to nothing (the CopyTrade is SKIPPED with this reason code)."""

    #: Lot-traded instrument whose follower quantity is under one lot, with the
    #: at-least-one rule switched off (``raise_to_minimum=False``).
    BELOW_ONE_LOT = "below_one_lot"
    #: The follower's ``max_quantity`` is smaller than one lot: no order can fit under it.
    MAX_QUANTITY_BELOW_LOT = "max_quantity_below_lot"


#: What a person reads for each skip reason.
SKIP_MESSAGES: dict[SkipReason, str] = {
    SkipReason.BELOW_ONE_LOT: "The scaled quantity is less than one lot.",
    SkipReason.MAX_QUANTITY_BELOW_LOT: "The follower's maximum quantity is less than one lot.",
}


class ExitReason(StrEnum):
    """Why an exit was sized to nothing (nothing is sent; the engine records the reason)."""

    #: The master order does not reduce the master's position (reduce_qty is 0).
    MASTER_NOT_REDUCING = "master_not_reducing"
    #: The follower's copied position (ledger) is flat: there is nothing to exit.
    FOLLOWER_FLAT = "follower_flat"
    #: The follower's copied position is on the other side of the master's: exiting would
    #: add to it, so nothing is sent (reconciliation reports the drift).
    FOLLOWER_OPPOSITE = "follower_opposite"
    #: The proportional exit rounds down to zero whole lots.
    ROUNDS_TO_ZERO = "rounds_to_zero_lots"


EXIT_MESSAGES: dict[ExitReason, str] = {
    ExitReason.MASTER_NOT_REDUCING: "The master order does not reduce the master's position.",
    ExitReason.FOLLOWER_FLAT: "The follower holds no copied position to exit.",
    ExitReason.FOLLOWER_OPPOSITE: (
        "The follower's copied position is opposite to the master's; nothing is exited."
    ),
    ExitReason.ROUNDS_TO_ZERO: "The proportional exit is less than one lot.",
}


# --- Helpers ---------------------------------------------------------------------------------
def _check_int(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _check_multiplier(multiplier: object) -> tuple[int, int]:
    """The multiplier as an exact (numerator, denominator) pair."""
    # Floats are refused: 0.1 is not 0.1 in binary, and a sizing rule must be exact.
    if isinstance(multiplier, bool) or not isinstance(multiplier, Decimal | int):
        raise TypeError(f"multiplier must be a Decimal or int, got {type(multiplier).__name__}")
    if isinstance(multiplier, Decimal) and not multiplier.is_finite():
        raise ValueError(f"multiplier must be finite, got {multiplier}")
    if multiplier <= 0:
        raise ValueError(f"multiplier must be positive, got {multiplier}")
    return multiplier.as_integer_ratio()


def _fmt(value: Decimal | int) -> str:
    """Shortest plain rendering of an exact number for notes: 3, 1.5, 37.5, 0.1."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _ratio(numerator: int, denominator: int) -> str:
    """numerator/denominator for notes: exact when it has at most 2 decimals, else ≈ 2."""
    if numerator % denominator == 0:
        return str(numerator // denominator)
    exact = Decimal(numerator) / Decimal(denominator)
    rounded = exact.quantize(_CENT, rounding=ROUND_HALF_UP)
    return _fmt(rounded) if rounded == exact else f"≈{_fmt(rounded)}"


def _lots_word(lots: int, lot_size: int) -> str:
    return f"{lots} lot{'s' if lots != 1 else ''} of {lot_size}"


# --- Entry sizing ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EntrySize:
    """The follower quantity for one entry, or why there is none.

    ``quantity`` is 0 exactly when ``skip_reason`` is set. ``note`` is a short human
    explanation suitable for ``CopyTrade.sizing_note`` (at most 200 characters).
    """

    quantity: int
    lots: int
    lot_size: int
    #: master_qty * multiplier, exactly (before floor, cap and minimum).
    raw: Decimal
    capped: bool
    raised_to_minimum: bool
    skip_reason: SkipReason | None
    note: str

    @property
    def skipped(self) -> bool:
        return self.skip_reason is not None


def size_entry(
    master_qty: int,
    multiplier: Decimal | int,
    *,
    lot_size: int = 1,
    max_quantity: int | None = None,
    raise_to_minimum: bool = True,
) -> EntrySize:
    """Size a follower's entry from the master's quantity.

    The rule (DESIGN.md): ``floor(master_qty * multiplier)``, in whole lots rounded down,
    capped at ``max_quantity`` (also in whole lots), and at least one lot when one lot fits
    under ``max_quantity``; otherwise the result is skipped with a named reason.

    Args:
        master_qty: the master's order quantity (order-quantity units, ≥ 1).
        multiplier: the follower's lot multiplier, a positive ``Decimal`` (or int); floats
            are refused.
        lot_size: units per lot (≥ 1; 1 for equities and for MCX quantities in lots).
        max_quantity: the follower's cap in order-quantity units; ``None`` means no cap.
        raise_to_minimum: the at-least-one rule (default on). Off, a quantity under one lot
            is skipped as ``below_one_lot`` instead of raised to one lot.

    Raises:
        TypeError / ValueError for malformed inputs (these are programming errors: the
        models' constraints already forbid them).
    """
    _check_int("master_qty", master_qty, minimum=1)
    _check_int("lot_size", lot_size, minimum=1)
    if max_quantity is not None:
        _check_int("max_quantity", max_quantity, minimum=1)
    numerator, denominator = _check_multiplier(multiplier)

    # floor(master_qty * multiplier / lot_size) whole lots, in exact integer arithmetic.
    scaled = master_qty * numerator
    lots = scaled // (denominator * lot_size)
    raw = Decimal(master_qty) * Decimal(multiplier)  # for the record; the decision is above
    formula = f"{master_qty} × {_fmt(multiplier)} = {_fmt(raw)}"
    parts = [formula]
    if lot_size > 1:
        parts.append(f"→ {_lots_word(lots, lot_size)}")
    elif scaled % denominator:
        parts.append(f"→ {lots}")

    max_lots = None if max_quantity is None else max_quantity // lot_size
    capped = False
    raised = False

    if max_lots is not None and max_lots == 0:
        parts.append(f"→ max quantity {max_quantity} is less than one lot of {lot_size}")
        return _skipped(lot_size, raw, SkipReason.MAX_QUANTITY_BELOW_LOT, parts)

    if max_lots is not None and lots > max_lots:
        lots = max_lots
        capped = True
        parts.append(f"→ capped at {lots * lot_size} (max quantity {max_quantity})")

    if lots == 0:
        if not raise_to_minimum:
            parts.append("→ less than one lot" if lot_size > 1 else "→ less than 1")
            return _skipped(lot_size, raw, SkipReason.BELOW_ONE_LOT, parts)
        lots = 1
        raised = True
        parts.append(
            f"→ raised to 1 lot ({lot_size})" if lot_size > 1 else "→ raised to the minimum 1"
        )

    quantity = lots * lot_size
    return EntrySize(
        quantity=quantity,
        lots=lots,
        lot_size=lot_size,
        raw=raw,
        capped=capped,
        raised_to_minimum=raised,
        skip_reason=None,
        note=_note(parts),
    )


def _skipped(lot_size: int, raw: Decimal, reason: SkipReason, parts: list[str]) -> EntrySize:
    return EntrySize(
        quantity=0,
        lots=0,
        lot_size=lot_size,
        raw=raw,
        capped=False,
        raised_to_minimum=False,
        skip_reason=reason,
        note=_note([*parts, f"(skipped: {reason.value})"]),
    )


def _note(parts: list[str]) -> str:
    text = " ".join(parts)
    return text if len(text) <= 200 else text[:199] + "…"


# --- Freeze-quantity legs ----------------------------------------------------------------------
def split_legs(qty: int, freeze_qty: int | None, lot_size: int = 1) -> tuple[int, ...]:
    """Split an order above the exchange freeze quantity into legs.

    Each leg is at most ``freeze_qty`` (the largest quantity one order may carry, in
    order-quantity units) and a whole number of lots. Legs are as large as possible, largest
    first, so the result is deterministic: ``split_legs(3900, 1800, 65)`` is
    ``(1755, 1755, 390)`` (27 + 27 + 6 lots). ``freeze_qty=None`` means no limit (one leg).

    Raises ValueError when ``qty`` is not a whole number of lots or one lot exceeds the
    freeze quantity (no valid split exists).
    """
    _check_int("qty", qty, minimum=1)
    _check_int("lot_size", lot_size, minimum=1)
    if qty % lot_size:
        raise ValueError(f"qty {qty} is not a whole number of lots of {lot_size}")
    if freeze_qty is None:
        return (qty,)
    _check_int("freeze_qty", freeze_qty, minimum=1)
    max_leg = (freeze_qty // lot_size) * lot_size
    if max_leg == 0:
        raise ValueError(f"freeze quantity {freeze_qty} is less than one lot of {lot_size}")
    full, rest = divmod(qty, max_leg)
    return (max_leg,) * full + ((rest,) if rest else ())


# --- Exit sizing -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ExitSize:
    """How much of the follower's copied position to exit, or why nothing.

    ``side`` is the follower's order side (SELL to reduce a long, BUY to reduce a short) and
    is ``None`` exactly when ``quantity`` is 0 (then ``reason`` says why).
    """

    quantity: int
    lots: int
    side: Side | None
    #: reduce_qty / abs(master_position_before), exactly (0 when the master is not reducing).
    proportion: Fraction
    #: The master ends flat with this order: the follower exits its whole copied position.
    master_flat: bool
    reason: ExitReason | None
    note: str


def size_exit(
    master_position_before: int,
    reduce_qty: int,
    follower_position: int,
    *,
    lot_size: int = 1,
) -> ExitSize:
    """Size the follower's exit for a master order that reduces or closes a position.

    Definitions (DESIGN.md "Exits"):

    * ``proportion = reduce_qty / abs(master_position_before)``
    * master ends flat (``reduce_qty == abs(master_position_before)``): the follower exits
      its **whole** copied position, ``abs(follower_position)``, whatever the rounding.
    * otherwise: ``floor(abs(follower_position) * proportion)`` rounded **down** to whole
      lots.
    * never more than ``abs(follower_position)``; zero → a named "nothing to exit" result.

    Args:
        master_position_before: the master's signed net position before this order
            (long > 0, short < 0).
        reduce_qty: the reducing part of the master order (≥ 0 and at most
            ``abs(master_position_before)``; split a reversing order with
            ``split_reversal`` first).
        follower_position: the follower's signed copied position from the position ledger,
            the only source for how much the follower may sell.
        lot_size: units per lot (see the module docstring).
    """
    _check_int("reduce_qty", reduce_qty, minimum=0)
    _check_int("lot_size", lot_size, minimum=1)
    for name, value in (
        ("master_position_before", master_position_before),
        ("follower_position", follower_position),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    master_abs = abs(master_position_before)
    if reduce_qty > master_abs:
        raise ValueError(
            f"reduce_qty {reduce_qty} exceeds the master's position {master_position_before}; "
            "split a reversing order with split_reversal() first"
        )

    if reduce_qty == 0:
        return _no_exit(Fraction(0), False, ExitReason.MASTER_NOT_REDUCING)
    proportion = Fraction(reduce_qty, master_abs)
    master_flat = reduce_qty == master_abs
    if follower_position == 0:
        return _no_exit(proportion, master_flat, ExitReason.FOLLOWER_FLAT)
    if (follower_position > 0) != (master_position_before > 0):
        return _no_exit(proportion, master_flat, ExitReason.FOLLOWER_OPPOSITE)

    follower_abs = abs(follower_position)
    side: Side = "SELL" if follower_position > 0 else "BUY"
    base = f"master {master_position_before:+d} reduces {reduce_qty}"
    if master_flat:
        quantity = follower_abs
        note = f"{base} → master flat → exit all {quantity}"
    else:
        # floor(follower_abs * reduce_qty / master_abs) in whole lots, in exact integers.
        scaled = follower_abs * reduce_qty
        quantity = scaled // (master_abs * lot_size) * lot_size
        percent = _ratio(100 * reduce_qty, master_abs)
        note = f"{base} ({percent}%) → {follower_abs} × {percent}%"
        note += f" = {_ratio(scaled, master_abs)}"
        if lot_size > 1:
            note += f" → {_lots_word(quantity // lot_size, lot_size)}"
        elif scaled % master_abs:
            note += f" → {quantity}"
        if quantity == 0:
            return _no_exit(proportion, False, ExitReason.ROUNDS_TO_ZERO, note)
    quantity = min(quantity, follower_abs)  # the invariant, stated once more
    return ExitSize(
        quantity=quantity,
        lots=quantity // lot_size,
        side=side,
        proportion=proportion,
        master_flat=master_flat,
        reason=None,
        note=_note([note]),
    )


def _no_exit(
    proportion: Fraction, master_flat: bool, reason: ExitReason, note: str = ""
) -> ExitSize:
    text = f"{note} (nothing to exit: {reason.value})" if note else f"nothing to exit: {reason}"
    return ExitSize(
        quantity=0,
        lots=0,
        side=None,
        proportion=proportion,
        master_flat=master_flat,
        reason=reason,
        note=_note([text]),
    )


class ReversalSplit(NamedTuple):
    """A master order split into the part that reduces its position and the part that opens
    a new one. ``exit_qty`` goes through ``size_exit``; ``entry_qty`` (if any) is a new
    entry in the order's direction, sized by ``size_entry`` and subject to every entry
    check."""

    exit_qty: int
    entry_qty: int


def split_reversal(master_position_before: int, side: Side, qty: int) -> ReversalSplit:
    """Split a master order into its exit part and its entry part.

    Long 10, SELL 15 → ``(10, 5)``: 10 closes the long, 5 opens a short. Long 10, SELL 4 →
    ``(4, 0)``. Long 10, BUY 5 → ``(0, 5)`` (adds to the position: an entry). Flat → all entry.
    """
    if side not in ("BUY", "SELL"):
        raise ValueError(f"side must be BUY or SELL, got {side!r}")
    _check_int("qty", qty, minimum=1)
    if isinstance(master_position_before, bool) or not isinstance(master_position_before, int):
        raise TypeError("master_position_before must be an int")
    reducing = (master_position_before > 0 and side == "SELL") or (
        master_position_before < 0 and side == "BUY"
    )
    if not reducing:
        return ReversalSplit(0, qty)
    exit_qty = min(qty, abs(master_position_before))
    return ReversalSplit(exit_qty, qty - exit_qty)


# --- Copy-fills mode: residual carry ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FillIncrement:
    """What to send now for a master fill in copy-fills mode.

    ``target`` is the follower's cumulative quantity for the master's cumulative fill
    (``size_entry`` of it); ``quantity`` is ``target - sent`` when positive, else 0.
    ``overshoot`` is how far ``sent`` already exceeds ``target`` (never undone here; the
    engine reports it).
    """

    quantity: int
    target: int
    sent: int
    overshoot: int
    sizing: EntrySize

    @property
    def lots(self) -> int:
        return self.quantity // self.sizing.lot_size


def next_fill_increment(
    master_filled_total: int,
    multiplier: Decimal | int,
    *,
    sent_so_far: int,
    lot_size: int = 1,
    max_quantity: int | None = None,
    raise_to_minimum: bool = True,
) -> FillIncrement:
    """The next follower quantity to send after a master fill (copy-fills mode).

    The follower's cumulative total is kept equal to ``size_entry(master_filled_total)`` at
    every step: the residual from lot rounding is carried forward, so several partial fills
    add up to exactly what one fill of the same total would have given. The target never
    decreases as fills accumulate (``size_entry`` is monotone), so the follower is never
    sent more than its target and catches up as soon as a whole lot is due.

    Args:
        master_filled_total: the master order's cumulative filled quantity (≥ 0).
        sent_so_far: the follower quantity already sent (or decided) for earlier fills of
            this master order (≥ 0).
        Other arguments as ``size_entry``.

    The increment may exceed the freeze quantity: split it with ``split_legs``.
    """
    _check_int("master_filled_total", master_filled_total, minimum=0)
    _check_int("sent_so_far", sent_so_far, minimum=0)
    if master_filled_total == 0:
        _check_int("lot_size", lot_size, minimum=1)
        _check_multiplier(multiplier)
        sizing = EntrySize(0, 0, lot_size, Decimal(0), False, False, None, "nothing filled yet")
        target = 0
    else:
        sizing = size_entry(
            master_filled_total,
            multiplier,
            lot_size=lot_size,
            max_quantity=max_quantity,
            raise_to_minimum=raise_to_minimum,
        )
        target = sizing.quantity
    return FillIncrement(
        quantity=max(0, target - sent_so_far),
        target=target,
        sent=sent_so_far,
        overshoot=max(0, sent_so_far - target),
        sizing=sizing,
    )
