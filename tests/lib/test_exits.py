"""Exit sizing (never oversell), reversal split, and copy-fills residual carry."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from copytrade.lib.sizing import (
    ExitReason,
    ReversalSplit,
    next_fill_increment,
    size_entry,
    size_exit,
    split_reversal,
)

D = Decimal


# --- Exits -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("master_before", "reduce", "follower", "lot", "qty", "side"),
    [
        (10, 5, 20, 1, 10, "SELL"),  # half of the master → half of the follower
        (10, 3, 15, 1, 4, "SELL"),  # 4.5 rounds down
        (10, 10, 15, 1, 15, "SELL"),  # master flat → follower flat
        (-10, 5, -20, 1, 10, "BUY"),  # short positions are bought back
        (-10, 10, -7, 1, 7, "BUY"),
        (150, 75, 225, 75, 75, "SELL"),  # half of 3 lots = 1.5 lots → 1 lot
        (150, 150, 225, 75, 225, "SELL"),
        (260, 130, 130, 65, 65, "SELL"),  # NIFTY: master 4 lots sells 2; follower 2 lots → 1
        (1000, 1, 1000, 1, 1, "SELL"),
    ],
)
def test_exit_table(master_before, reduce, follower, lot, qty, side):
    result = size_exit(master_before, reduce, follower, lot_size=lot)
    assert result.quantity == qty
    assert result.side == side
    assert result.lots == qty // lot
    assert result.reason is None
    assert result.proportion == Fraction(reduce, abs(master_before))
    assert result.master_flat is (reduce == abs(master_before))


def test_master_flat_exits_everything_even_an_odd_quantity():
    # A ledger that is not whole lots (a manual fix, a partial fill) still goes flat.
    result = size_exit(75, 75, 100, lot_size=75)
    assert result.quantity == 100
    assert result.master_flat
    assert "exit all 100" in result.note


def test_exit_rounding_to_zero_lots_is_a_named_nothing():
    result = size_exit(300, 75, 150, lot_size=75)  # a quarter of 2 lots = 0.5 lot
    assert result.quantity == 0
    assert result.side is None
    assert result.reason is ExitReason.ROUNDS_TO_ZERO
    assert "rounds_to_zero_lots" in result.note


def test_follower_flat_is_a_named_nothing():
    result = size_exit(10, 5, 0)
    assert result.reason is ExitReason.FOLLOWER_FLAT
    assert result.quantity == 0


def test_follower_on_the_other_side_is_never_added_to():
    result = size_exit(10, 10, -5)
    assert result.reason is ExitReason.FOLLOWER_OPPOSITE
    assert result.quantity == 0 and result.side is None


def test_master_not_reducing_is_a_named_nothing():
    assert size_exit(10, 0, 5).reason is ExitReason.MASTER_NOT_REDUCING
    assert size_exit(0, 0, 5).reason is ExitReason.MASTER_NOT_REDUCING


def test_reducing_more_than_the_master_holds_must_be_split_first():
    with pytest.raises(ValueError, match="split_reversal"):
        size_exit(10, 15, 20)
    with pytest.raises(ValueError):
        size_exit(10, -1, 20)
    with pytest.raises(TypeError):
        size_exit(10.0, 5, 20)


def test_partial_exits_in_steps_end_flat_and_never_oversell():
    # Master 4 lots of 25, follower 8 lots (multiplier 2); the master sells one lot at a time.
    master, follower, lot = 100, 200, 25
    sent = []
    while master > 0:
        result = size_exit(master, 25, follower, lot_size=lot)
        assert result.quantity <= follower
        sent.append(result.quantity)
        follower -= result.quantity
        master -= 25
    assert sent == [50, 50, 50, 50]
    assert follower == 0


def test_small_follower_catches_up_on_later_exits_and_the_flat_one():
    # Master 4 lots, follower 2 lots (multiplier 0.5): the first two single-lot master exits
    # are less than one follower lot; the third is one lot; the final flat exit the rest.
    master, follower, lot = 100, 50, 25
    sent = []
    while master > 0:
        result = size_exit(master, 25, follower, lot_size=lot)
        sent.append((result.quantity, result.reason))
        follower -= result.quantity
        master -= 25
    assert sent == [
        (0, ExitReason.ROUNDS_TO_ZERO),
        (0, ExitReason.ROUNDS_TO_ZERO),
        (25, None),
        (25, None),
    ]
    assert follower == 0


@given(
    master_lots=st.integers(min_value=1, max_value=400),
    reduce_lots=st.integers(min_value=0, max_value=400),
    follower_qty=st.integers(min_value=-20_000, max_value=20_000),
    lot=st.sampled_from([1, 15, 25, 30, 65, 75]),
    short=st.booleans(),
)
def test_exit_never_oversells(master_lots, reduce_lots, follower_qty, lot, short):
    reduce_lots = min(reduce_lots, master_lots)
    master = master_lots * lot * (-1 if short else 1)
    result = size_exit(master, reduce_lots * lot, follower_qty, lot_size=lot)
    assert 0 <= result.quantity <= abs(follower_qty)
    if result.quantity:
        # The exit always reduces the follower's position, never flips or adds to it.
        assert result.side == ("SELL" if follower_qty > 0 else "BUY")
        assert (follower_qty > 0) == (master > 0)
        if not result.master_flat:
            assert result.quantity % lot == 0
            assert result.quantity <= abs(follower_qty) * Fraction(reduce_lots, master_lots)
        else:
            assert result.quantity == abs(follower_qty)
    else:
        assert result.reason is not None and result.side is None


@given(
    master_lots=st.integers(min_value=1, max_value=60),
    follower_lots=st.integers(min_value=0, max_value=120),
    lot=st.sampled_from([1, 25, 65]),
    data=st.data(),
)
def test_any_sequence_of_master_exits_leaves_the_follower_flat_with_the_master(
    master_lots, follower_lots, lot, data
):
    master, follower = master_lots * lot, follower_lots * lot
    while master > 0:
        step = data.draw(st.integers(min_value=1, max_value=master // lot)) * lot
        result = size_exit(master, step, follower, lot_size=lot)
        follower -= result.quantity
        master -= step
        assert follower >= 0
    assert follower == 0


# --- Reversal ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("position", "side", "qty", "expected"),
    [
        (10, "SELL", 15, (10, 5)),  # long 10 sells 15: close 10, open a short of 5
        (10, "SELL", 4, (4, 0)),
        (10, "SELL", 10, (10, 0)),
        (10, "BUY", 5, (0, 5)),  # adds to a long: an entry
        (0, "SELL", 5, (0, 5)),
        (0, "BUY", 5, (0, 5)),
        (-10, "BUY", 25, (10, 15)),
        (-10, "SELL", 5, (0, 5)),
    ],
)
def test_split_reversal(position, side, qty, expected):
    split = split_reversal(position, side, qty)
    assert split == expected
    assert isinstance(split, ReversalSplit)
    assert split.exit_qty == expected[0] and split.entry_qty == expected[1]


def test_split_reversal_rejects_bad_input():
    with pytest.raises(ValueError):
        split_reversal(10, "HOLD", 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        split_reversal(10, "SELL", 0)


@given(
    position=st.integers(min_value=-10_000, max_value=10_000),
    side=st.sampled_from(["BUY", "SELL"]),
    qty=st.integers(min_value=1, max_value=10_000),
)
def test_reversal_parts_add_up_and_the_exit_never_exceeds_the_position(position, side, qty):
    exit_qty, entry_qty = split_reversal(position, side, qty)
    assert exit_qty + entry_qty == qty
    assert 0 <= exit_qty <= abs(position)
    if entry_qty and exit_qty:
        assert exit_qty == abs(position)  # only a fully closed position reverses


# --- Copy-fills residual carry -----------------------------------------------------------------
def test_partial_fills_add_up_to_the_single_fill_size():
    # Master buys 10 NIFTY lots (lot 75) in fills of 2, 3, 1 and 4 lots; follower 0.5*.
    fills = [150, 225, 75, 300]
    sent = 0
    increments = []
    cumulative = 0
    for fill in fills:
        cumulative += fill
        step = next_fill_increment(cumulative, D("0.5"), sent_so_far=sent, lot_size=75)
        increments.append(step.quantity)
        sent += step.quantity
        assert sent == size_entry(cumulative, D("0.5"), lot_size=75).quantity
    # 1 lot, 2.5→2 lots (+1), 3 lots (+1), 5 lots (+2)
    assert increments == [75, 75, 75, 150]
    assert sent == size_entry(750, D("0.5"), lot_size=75).quantity == 375


def test_first_sub_lot_fill_sends_one_lot_then_waits_until_more_is_due():
    sent = 0
    steps = []
    for cumulative in (25, 50, 75, 100, 125):
        step = next_fill_increment(cumulative, D("0.5"), sent_so_far=sent, lot_size=25)
        steps.append(step.quantity)
        sent += step.quantity
    # targets: 1 lot (raised), 1, 1 (37.5), 2 (50), 2 (62.5)
    assert steps == [25, 0, 0, 25, 0]


def test_cap_stops_increments():
    sent = 0
    for cumulative in (100, 200, 300):
        step = next_fill_increment(cumulative, D("1"), sent_so_far=sent, max_quantity=150)
        sent += step.quantity
    assert sent == 150


def test_nothing_filled_sends_nothing():
    step = next_fill_increment(0, D("2"), sent_so_far=0, lot_size=75)
    assert step.quantity == 0 and step.target == 0


def test_overshoot_is_reported_never_negative():
    step = next_fill_increment(75, D("1"), sent_so_far=150, lot_size=75)
    assert step.quantity == 0
    assert step.overshoot == 75


@given(
    fills=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=12),
    multiplier=st.decimals(min_value=D("0.05"), max_value=D("5"), places=2),
    lot=st.sampled_from([1, 15, 25, 65, 75]),
    max_lots=st.one_of(st.none(), st.integers(min_value=1, max_value=200)),
    minimum=st.booleans(),
)
def test_cumulative_copy_fills_equal_size_entry_of_the_cumulative_fill(
    fills, multiplier, lot, max_lots, minimum
):
    max_quantity = None if max_lots is None else max_lots * lot
    kwargs = {"lot_size": lot, "max_quantity": max_quantity, "raise_to_minimum": minimum}
    sent = cumulative = 0
    for fill_lots in fills:
        cumulative += fill_lots * lot
        step = next_fill_increment(cumulative, multiplier, sent_so_far=sent, **kwargs)
        assert step.quantity >= 0 and step.quantity % lot == 0
        assert step.overshoot == 0
        sent += step.quantity
        assert sent == size_entry(cumulative, multiplier, **kwargs).quantity


def test_exit_notes_explain_the_proportion():
    assert size_exit(10, 3, 20).note == "master +10 reduces 3 (30%) → 20 × 30% = 6"
    assert size_exit(-10, 3, -15).note == "master -10 reduces 3 (30%) → 15 × 30% = 4.5 → 4"
    inexact = size_exit(30, 10, 50, lot_size=25).note
    assert inexact.startswith("master +30 reduces 10 (≈33.33%) → 50 × ≈33.33% = ≈16.67")
