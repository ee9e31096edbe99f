"""Broker number parsing, tick rounding, order value and INR formatting."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from copytrade.lib.money import (
    BrokerNumberError,
    TickRounding,
    format_inr,
    order_value,
    parse_decimal,
    parse_quantity,
    quantize_money,
    round_price_for_side,
    round_to_tick,
)

D = Decimal


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("299,280.00", D("299280.00")),
        ("12,34,567.89", D("1234567.89")),
        ("₹12,34,567.89", D("1234567.89")),
        (" -1,234.50 ", D("-1234.50")),
        ("+5", D("5")),
        ("00.00", D("0.00")),
        ("1452.0", D("1452.0")),
        (".5", D("0.5")),
        ("5.", D("5")),
        ("1E3", D("1000")),
        (0.1, D("0.1")),
        (1234.5, D("1234.5")),
        (10, D("10")),
        (D("3.14"), D("3.14")),
    ],
)
def test_parse_decimal_reads_broker_numbers(raw, expected):
    result = parse_decimal(raw)
    assert result == expected
    assert isinstance(result, Decimal)


def test_floats_go_through_their_shortest_repr():
    assert str(parse_decimal(0.1)) == "0.1"
    assert str(parse_decimal(2.675)) == "2.675"


@pytest.mark.parametrize(
    "raw", [None, "", "  ", "--", "-", "NA", "na", "N/A", "null", "None", "NaN"]
)
def test_placeholders_give_the_default(raw):
    assert parse_decimal(raw) is None
    assert parse_decimal(raw, default=D("0")) == D("0")


@pytest.mark.parametrize(
    "raw",
    ["abc", "1.2.3", "1_000", "--5", "Infinity", "-inf", "12a", ".", "1e", "e5", float("nan"),
     float("inf"), True, [1], {"a": 1}, D("NaN"), D("Infinity")],
)  # fmt: skip
def test_garbage_is_an_error_not_zero(raw):
    with pytest.raises(BrokerNumberError):
        parse_decimal(raw)


def test_broker_number_error_is_a_value_error():
    assert issubclass(BrokerNumberError, ValueError)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("10", 10), (10, 10), ("1,200", 1200), (10.0, 10), ("-5", -5), ("NA", None), ("--", None)],
)
def test_parse_quantity(raw, expected):
    assert parse_quantity(raw) == expected


def test_parse_quantity_refuses_fractions():
    with pytest.raises(BrokerNumberError):
        parse_quantity("2.5")
    assert parse_quantity("", default=0) == 0


# --- Ticks -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("price", "tick", "mode", "expected"),
    [
        ("101.234", "0.05", "down", "101.20"),
        ("101.234", "0.05", "up", "101.25"),
        ("101.234", "0.05", "nearest", "101.25"),
        ("101.224", "0.05", "nearest", "101.20"),
        ("101.225", "0.05", "nearest", "101.25"),  # ties go up
        ("101.20", "0.05", "down", "101.20"),  # already on the tick: unchanged
        ("101.20", "0.05", "up", "101.20"),
        ("99.999", "0.01", "up", "100.00"),
        ("10234.5", "1", "down", "10234"),
        ("10234.5", "1.0", "up", "10235"),
        ("10.13", "0.25", "down", "10.00"),
        ("10.13", "0.25", "up", "10.25"),
        ("24567.3", "0.10", "down", "24567.3"),
    ],
)
def test_round_to_tick(price, tick, mode, expected):
    result = round_to_tick(D(price), D(tick), mode)
    assert result == D(expected)
    assert str(result) == expected


def test_round_to_tick_accepts_the_enum():
    assert round_to_tick(D("1.03"), D("0.05"), TickRounding.DOWN) == D("1.00")


def test_round_to_tick_rejects_bad_ticks():
    with pytest.raises(ValueError):
        round_to_tick(D("1"), D("0"), "down")
    with pytest.raises(ValueError):
        round_to_tick(D("1"), D("-0.05"), "down")
    with pytest.raises(ValueError):
        round_to_tick(D("1"), D("0.05"), "sideways")
    with pytest.raises(TypeError):
        round_to_tick(1.0, D("0.05"), "down")  # type: ignore[arg-type]


def test_buy_rounds_down_and_sell_rounds_up():
    assert round_price_for_side(D("101.234"), D("0.05"), "BUY") == D("101.20")
    assert round_price_for_side(D("101.234"), D("0.05"), "SELL") == D("101.25")
    with pytest.raises(ValueError):
        round_price_for_side(D("1"), D("0.05"), "HOLD")  # type: ignore[arg-type]


@given(
    price=st.decimals(min_value=D("0.01"), max_value=D("100000"), places=4),
    tick=st.sampled_from([D("0.01"), D("0.05"), D("0.1"), D("0.25"), D("0.5"), D("1"), D("5")]),
)
def test_rounded_prices_are_tick_multiples_on_the_right_side(price, tick):
    down = round_to_tick(price, tick, "down")
    up = round_to_tick(price, tick, "up")
    nearest = round_to_tick(price, tick, "nearest")
    for value in (down, up, nearest):
        assert value % tick == 0
    assert down <= price < down + tick
    assert up - tick < price <= up
    assert abs(nearest - price) <= tick / 2


# --- Values and display ------------------------------------------------------------------------
def test_order_value_is_exact():
    assert order_value(75, D("123.45")) == D("9258.75")
    assert order_value(3, D("0.1")) == D("0.3")
    assert order_value(2, D("71234"), price_multiplier=100) == D("14246800")
    assert order_value(0, D("5")) == 0


def test_order_value_rejects_bad_input():
    with pytest.raises(ValueError):
        order_value(-1, D("5"))
    with pytest.raises(TypeError):
        order_value(1, 5.0)  # type: ignore[arg-type]


def test_quantize_money_rounds_half_up_to_paise():
    assert quantize_money(D("1.005")) == D("1.01")
    assert quantize_money(D("1.004")) == D("1.00")
    assert quantize_money(D("-1.005")) == D("-1.01")


@pytest.mark.parametrize(
    ("amount", "kwargs", "expected"),
    [
        (D("1234567.891"), {}, "12,34,567.89"),
        (D("0"), {}, "0.00"),
        (D("999"), {}, "999.00"),
        (D("1000"), {}, "1,000.00"),
        (D("100000"), {}, "1,00,000.00"),
        (D("12345678901.5"), {}, "12,34,56,78,901.50"),
        (D("-1234567.5"), {}, "-12,34,567.50"),
        (D("1234567.891"), {"symbol": True}, "₹12,34,567.89"),
        (D("-1234.5"), {"symbol": True}, "-₹1,234.50"),
        (D("-0.001"), {}, "0.00"),
        (D("1234567.5"), {"places": 0}, "12,34,568"),
        (1234567, {}, "12,34,567.00"),
        (D("299280.00"), {}, "2,99,280.00"),
    ],
)
def test_format_inr_uses_indian_grouping(amount, kwargs, expected):
    assert format_inr(amount, **kwargs) == expected


def test_format_inr_rejects_floats_and_infinities():
    with pytest.raises(TypeError):
        format_inr(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        format_inr(D("Infinity"))


@given(st.decimals(min_value=D("-1e15"), max_value=D("1e15"), places=2))
def test_format_inr_round_trips_through_parse(amount):
    assert parse_decimal(format_inr(amount)) == amount
