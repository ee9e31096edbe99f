"""Entry sizing and freeze-quantity legs: the sizing table of DESIGN.md "Copy semantics"."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from copytrade.lib.sizing import SkipReason, size_entry, split_legs

D = Decimal

# (master_qty, multiplier, lot_size, max_quantity, expected quantity, capped, raised)
# Expected values are worked out by hand from the rule, not from the code.
SIZING_TABLE = [
    # equities (lot 1)
    (10, "0.5", 1, None, 5, False, False),
    (10, "1", 1, None, 10, False, False),
    (10, "1.5", 1, None, 15, False, False),
    (10, "2", 1, None, 20, False, False),
    (10, "0.1", 1, None, 1, False, False),
    (7, "0.5", 1, None, 3, False, False),  # 3.5 floors to 3
    (33, "1.5", 1, None, 49, False, False),  # 49.5 floors to 49
    (3, "0.1", 1, None, 1, False, True),  # 0.3 → at least 1
    (1, "0.5", 1, None, 1, False, True),
    (100, "2", 1, 150, 150, True, False),
    (100, "0.1", 1, 5, 5, True, False),
    (100, "1", 1, 100, 100, False, False),  # exactly at the cap is not capped
    # lot 15 (BANKNIFTY 2023-24)
    (30, "0.5", 15, None, 15, False, False),
    (15, "0.5", 15, None, 15, False, True),  # 7.5 → 0 lots → one lot
    (45, "1.5", 15, None, 60, False, False),  # 67.5 → 4 lots
    (150, "0.1", 15, None, 15, False, False),
    (150, "2", 15, 200, 195, True, False),  # 20 lots capped at 13 whole lots
    (15, "1", 15, 15, 15, False, False),
    # lot 25 (NIFTY 2024)
    (100, "0.5", 25, None, 50, False, False),
    (25, "1.5", 25, None, 25, False, False),  # 37.5 → 1 lot
    (75, "1.5", 25, None, 100, False, False),  # 112.5 → 4 lots
    (250, "0.1", 25, None, 25, False, False),
    (225, "0.1", 25, None, 25, False, True),  # 22.5 → 0 lots → one lot
    (50, "2", 25, None, 100, False, False),
    (500, "2", 25, 990, 975, True, False),  # 40 lots capped at 39
    # lot 65 (NIFTY 2026)
    (65, "0.5", 65, None, 65, False, True),  # 32.5 → one lot
    (130, "0.5", 65, None, 65, False, False),
    (130, "1.5", 65, None, 195, False, False),
    (195, "1.5", 65, None, 260, False, False),  # 292.5 → 4 lots
    (650, "0.1", 65, None, 65, False, False),
    (3900, "1", 65, None, 3900, False, False),
    (1950, "2", 65, None, 3900, False, False),
    (3900, "0.1", 65, 200, 195, True, False),  # 390 → 6 lots, capped at 3 lots
    # lot 75 (NIFTY 2025)
    (75, "0.5", 75, None, 75, False, True),
    (150, "0.5", 75, None, 75, False, False),
    (75, "1.5", 75, None, 75, False, False),  # 112.5 → 1 lot
    (225, "1.5", 75, None, 300, False, False),  # 337.5 → 4 lots
    (750, "0.1", 75, None, 75, False, False),
    (1800, "2", 75, 1000, 975, True, False),  # 48 lots capped at 13
    (75, "2", 75, 100, 75, True, False),  # 2 lots capped at the one that fits
]


@pytest.mark.parametrize(
    ("master_qty", "multiplier", "lot_size", "max_quantity", "expected", "capped", "raised"),
    SIZING_TABLE,
)
def test_sizing_table(master_qty, multiplier, lot_size, max_quantity, expected, capped, raised):
    result = size_entry(master_qty, D(multiplier), lot_size=lot_size, max_quantity=max_quantity)
    assert result.quantity == expected
    assert result.lots == expected // lot_size
    assert result.capped is capped
    assert result.raised_to_minimum is raised
    assert result.skip_reason is None
    assert not result.skipped
    assert result.raw == D(multiplier) * master_qty


def test_cap_above_one_lot_is_skipped_when_one_lot_does_not_fit():
    result = size_entry(65, D("1"), lot_size=65, max_quantity=64)
    assert result.skipped
    assert result.skip_reason is SkipReason.MAX_QUANTITY_BELOW_LOT
    assert result.quantity == 0 and result.lots == 0
    assert "max_quantity_below_lot" in result.note


def test_max_quantity_below_lot_skips_even_for_large_orders():
    result = size_entry(1500, D("2"), lot_size=15, max_quantity=10)
    assert result.skip_reason is SkipReason.MAX_QUANTITY_BELOW_LOT


def test_below_one_lot_skips_when_the_minimum_rule_is_off():
    result = size_entry(65, D("0.5"), lot_size=65, raise_to_minimum=False)
    assert result.skip_reason is SkipReason.BELOW_ONE_LOT
    assert result.quantity == 0
    equity = size_entry(3, D("0.1"), raise_to_minimum=False)
    assert equity.skip_reason is SkipReason.BELOW_ONE_LOT


def test_minimum_rule_off_still_sizes_whole_lots():
    assert size_entry(130, D("0.5"), lot_size=65, raise_to_minimum=False).quantity == 65


def test_notes_explain_the_arithmetic():
    assert size_entry(2, D("1.5")).note == "2 × 1.5 = 3"
    assert (
        size_entry(100, D("2"), max_quantity=50).note
        == "100 × 2 = 200 → capped at 50 (max quantity 50)"
    )
    assert size_entry(7, D("0.5")).note == "7 × 0.5 = 3.5 → 3"
    lots = size_entry(65, D("0.5"), lot_size=65).note
    assert lots == "65 × 0.5 = 32.5 → 0 lots of 65 → raised to 1 lot (65)"
    assert size_entry(3, D("0.1")).note == "3 × 0.1 = 0.3 → 0 → raised to the minimum 1"


def test_multiplier_from_the_database_keeps_its_meaning():
    # DecimalField(decimal_places=4) hands back Decimal("1.5000").
    result = size_entry(10, D("1.5000"))
    assert result.quantity == 15
    assert result.note == "10 × 1.5 = 15"


def test_int_multiplier_is_accepted():
    assert size_entry(10, 3).quantity == 30


def test_multiplier_with_four_decimals_is_exact():
    # 0.3333 * 3 = 0.9999: a float product could round to 1.0; the exact floor is 0 → 1.
    result = size_entry(3, D("0.3333"))
    assert result.raised_to_minimum
    assert size_entry(30000, D("0.3333")).quantity == 9999


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"master_qty": 0, "multiplier": D("1")}, ValueError),
        ({"master_qty": -5, "multiplier": D("1")}, ValueError),
        ({"master_qty": 5, "multiplier": D("0")}, ValueError),
        ({"master_qty": 5, "multiplier": D("-1")}, ValueError),
        ({"master_qty": 5, "multiplier": D("NaN")}, ValueError),
        ({"master_qty": 5, "multiplier": 1.5}, TypeError),
        ({"master_qty": 5, "multiplier": "1.5"}, TypeError),
        ({"master_qty": 5.0, "multiplier": D("1")}, TypeError),
        ({"master_qty": True, "multiplier": D("1")}, TypeError),
        ({"master_qty": 5, "multiplier": D("1"), "lot_size": 0}, ValueError),
        ({"master_qty": 5, "multiplier": D("1"), "max_quantity": 0}, ValueError),
    ],
)
def test_size_entry_rejects_malformed_inputs(kwargs, error):
    with pytest.raises(error):
        size_entry(**kwargs)


# --- Freeze legs -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("qty", "freeze", "lot", "legs"),
    [
        # NIFTY 2026: lot 65, freeze 1800 → at most 27 lots (1755) per order.
        (3900, 1800, 65, (1755, 1755, 390)),
        # BANKNIFTY: lot 30, freeze 900 → 30 lots per order.
        (2700, 900, 30, (900, 900, 900)),
        (1950, 900, 30, (900, 900, 150)),
        (900, 900, 30, (900,)),
        # NIFTY 2025: lot 75, freeze 1800 is exactly 24 lots.
        (3600, 1800, 75, (1800, 1800)),
        (1875, 1800, 75, (1800, 75)),
        # MCX (quantity in lots): CRUDEOIL freeze 100.
        (250, 100, 1, (100, 100, 50)),
        (100, 100, 1, (100,)),
        (65, 1800, 65, (65,)),
    ],
)
def test_split_legs(qty, freeze, lot, legs):
    assert split_legs(qty, freeze, lot) == legs


def test_no_freeze_quantity_means_one_leg():
    assert split_legs(100_000, None, 25) == (100_000,)


def test_split_legs_rejects_impossible_splits():
    with pytest.raises(ValueError, match="whole number of lots"):
        split_legs(100, 1800, 65)
    with pytest.raises(ValueError, match="less than one lot"):
        split_legs(130, 50, 65)
    with pytest.raises(ValueError):
        split_legs(0, 1800, 65)


# --- Properties --------------------------------------------------------------------------------
lot_sizes = st.sampled_from([1, 15, 25, 30, 35, 50, 65, 75, 120, 140])
multipliers = st.decimals(
    min_value=D("0.0001"), max_value=D("20"), places=4, allow_nan=False, allow_infinity=False
)


@given(
    lots=st.integers(min_value=1, max_value=500),
    lot_size=lot_sizes,
    freeze_lots=st.integers(min_value=1, max_value=100),
    freeze_extra=st.integers(min_value=0, max_value=200),
)
def test_legs_sum_to_qty_each_within_freeze_and_whole_lots(
    lots, lot_size, freeze_lots, freeze_extra
):
    qty = lots * lot_size
    freeze = freeze_lots * lot_size + freeze_extra % lot_size
    legs = split_legs(qty, freeze, lot_size)
    assert sum(legs) == qty
    assert all(0 < leg <= freeze and leg % lot_size == 0 for leg in legs)
    assert list(legs) == sorted(legs, reverse=True)
    # As few legs as possible: all but the last are full.
    max_leg = (freeze // lot_size) * lot_size
    assert all(leg == max_leg for leg in legs[:-1])
    assert len(legs) == -(-qty // max_leg)


@given(
    master_qty=st.integers(min_value=1, max_value=100_000),
    multiplier=multipliers,
    lot_size=lot_sizes,
    max_quantity=st.one_of(st.none(), st.integers(min_value=1, max_value=50_000)),
)
def test_entry_is_whole_lots_within_cap_and_never_above_the_scaled_quantity(
    master_qty, multiplier, lot_size, max_quantity
):
    result = size_entry(master_qty, multiplier, lot_size=lot_size, max_quantity=max_quantity)
    if result.skipped:
        assert max_quantity is not None and max_quantity < lot_size
        return
    assert result.quantity % lot_size == 0
    assert result.quantity >= lot_size
    if max_quantity is not None:
        assert result.quantity <= max_quantity
    if result.raised_to_minimum:
        assert result.quantity == lot_size
        assert result.raw < lot_size
    else:
        assert result.quantity <= result.raw
        # Rounded down by less than one lot, unless the cap bit.
        assert result.capped or result.raw - result.quantity < lot_size


@given(
    a=st.integers(min_value=1, max_value=50_000),
    b=st.integers(min_value=1, max_value=50_000),
    multiplier=multipliers,
    lot_size=lot_sizes,
    max_quantity=st.one_of(st.none(), st.integers(min_value=1, max_value=50_000)),
    minimum=st.booleans(),
)
def test_entry_size_never_decreases_as_the_master_quantity_grows(
    a, b, multiplier, lot_size, max_quantity, minimum
):
    low, high = sorted((a, b))
    kwargs = {"lot_size": lot_size, "max_quantity": max_quantity, "raise_to_minimum": minimum}
    assert (
        size_entry(low, multiplier, **kwargs).quantity
        <= size_entry(high, multiplier, **kwargs).quantity
    )
