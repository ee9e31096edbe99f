"""The input rules shared by models, forms and the API."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from accounts import validation


@pytest.mark.parametrize("value", ["AB1234", "912444", "ABCD", "A1B2C3D4E5F6G7H8I9J0"])
def test_valid_client_ids(value):
    validation.validate_client_id(value)


@pytest.mark.parametrize("value", ["", "AB1", "ab1234", "AB 1234", "AB-1234", "A" * 21, "९१२४४४"])
def test_invalid_client_ids(value):
    with pytest.raises(ValidationError):
        validation.validate_client_id(value)


def test_client_ids_are_normalised_to_upper_case():
    assert validation.normalise_client_id("  ab1234 ") == "AB1234"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("0.0001", True),
        ("1", True),
        ("100", True),
        ("0", False),
        ("-0.5", False),
        ("100.0001", False),
        ("1.00001", False),
    ],
)
def test_lot_multiplier_bounds(value, ok):
    if ok:
        validation.validate_lot_multiplier(Decimal(value))
    else:
        with pytest.raises(ValidationError):
            validation.validate_lot_multiplier(Decimal(value))


def test_instruments_are_split_normalised_and_deduplicated():
    text = " nse:infy,NFO:nifty\n\nNSE:INFY ; mcx:crudeoil  bse:M&M nse:BAJAJ-AUTO"
    assert validation.normalise_instruments(validation.split_instruments(text)) == [
        "NSE:INFY",
        "NFO:NIFTY",
        "MCX:CRUDEOIL",
        "BSE:M&M",
        "NSE:BAJAJ-AUTO",
    ]


def test_every_bad_instrument_is_named():
    with pytest.raises(ValidationError) as caught:
        validation.normalise_instruments(["NSE:INFY", "XX:INFY", "NIFTY", "NSE:", "NSE:A B"])
    messages = caught.value.messages
    assert len(messages) == 4
    assert any("'XX:INFY'" in m for m in messages)
    assert any("'NIFTY'" in m for m in messages)


def test_too_many_instruments():
    with pytest.raises(ValidationError, match="at most"):
        validation.normalise_instruments(
            [f"NSE:S{i}" for i in range(validation.MAX_INSTRUMENTS + 1)]
        )


def test_product_types_keep_canonical_order_and_refuse_unknowns():
    assert validation.normalise_product_types(["nrml", "MIS", "mis"]) == ["MIS", "NRML"]
    with pytest.raises(ValidationError):
        validation.validate_product_types(["MIS", "BO"])
    with pytest.raises(ValidationError):
        validation.validate_product_types([])


@given(
    st.lists(st.sampled_from(validation.EXCHANGES), min_size=1, max_size=5),
    st.lists(st.from_regex(r"[A-Z][A-Z0-9&._-]{0,10}", fullmatch=True), min_size=1, max_size=5),
)
def test_normalised_instruments_always_pass_the_model_validator(exchanges, symbols):
    entries = [f"{e.lower()}:{s}" for e, s in zip(exchanges, symbols, strict=False)]
    normalised = validation.normalise_instruments(entries)
    validation.validate_instruments(normalised)
    assert len(normalised) == len(set(normalised))


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (validation.validate_api_key, "short"),
        (validation.validate_api_key, "has a space inside it 12345"),
        (validation.validate_api_key, "x" * 513),
        (validation.validate_app_code, "a-b"),
        (validation.validate_api_secret, "tab\tinside-0123456789"),
    ],
)
def test_malformed_credentials_are_refused_without_echoing_them(check, value):
    with pytest.raises(ValidationError) as caught:
        check(value)
    assert value not in " ".join(caught.value.messages)
