"""Input rules for people's accounts and broker credentials, shared by models (full_clean),
forms (field errors) and the JSON API (the same services). Messages are module constants so
tests and the API can refer to them.

Normalisers turn what a person typed into the stored form (upper-case client ids and symbols,
no duplicates); validators refuse what cannot be right. Neither ever echoes a secret back.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from decimal import Decimal

from django.core.exceptions import ValidationError

# Product types and exchanges AliceBlue accepts (re-exported by accounts.models).
PRODUCT_TYPES = ("MIS", "CNC", "NRML")
EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "MCX", "CDS", "BCD")

# --- Limits -------------------------------------------------------------------------------
MAX_LOT_MULTIPLIER = Decimal("100")
MAX_QUANTITY_LIMIT = 10_000_000
MAX_MONEY = Decimal("99999999999999.99")  # DecimalField(max_digits=16, decimal_places=2)
MAX_INSTRUMENTS = 200
DISPLAY_NAME_MAX_LENGTH = 80

# --- Messages -----------------------------------------------------------------------------
CLIENT_ID_INVALID = (
    "Enter the AliceBlue client id: 4 to 20 letters and digits, for example AB1234 or 912444."
)
DISPLAY_NAME_INVALID = (
    "Use letters, digits, spaces and ordinary punctuation (no control characters)."
)
LOT_MULTIPLIER_TOO_SMALL = "The lot multiplier must be greater than 0."
LOT_MULTIPLIER_TOO_LARGE = f"The lot multiplier can be at most {MAX_LOT_MULTIPLIER}."
LOT_MULTIPLIER_TOO_PRECISE = "Use at most 4 decimal places for the lot multiplier."
PRODUCT_TYPES_REQUIRED = "Choose at least one product type (MIS, CNC or NRML)."
PRODUCT_TYPE_UNKNOWN = "Unknown product type {value!r}: choose from MIS, CNC, NRML."
INSTRUMENT_FORMAT = (
    "{value!r} is not an instrument: write EXCHANGE:SYMBOL, for example NSE:INFY or NFO:NIFTY."
)
INSTRUMENT_EXCHANGE_UNKNOWN = (
    "{value!r}: unknown exchange; use one of " + ", ".join(EXCHANGES) + "."
)
INSTRUMENT_SYMBOL_INVALID = (
    "{value!r}: the symbol may hold only letters, digits and & - _ . (at most 40 characters)."
)
TOO_MANY_INSTRUMENTS = f"List at most {MAX_INSTRUMENTS} instruments."
API_KEY_INVALID = (
    "That does not look like an AliceBlue API key: paste it exactly as shown in AliceBlue "
    "(16 to 512 characters, no spaces)."
)
APP_CODE_INVALID = (
    "That does not look like an AliceBlue app code: paste it exactly as shown in AliceBlue "
    "(4 to 64 letters and digits)."
)
API_SECRET_INVALID = (
    "That does not look like an AliceBlue API secret: paste it exactly as shown in AliceBlue "  # noqa: S105
    "(16 to 512 characters, no spaces)."
)

_CLIENT_ID = re.compile(r"^[A-Z0-9]{4,20}$")
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9&_.\-]{0,39}$")
# API keys and secrets are opaque tokens: url-safe or standard base64 alphabets, hex, JWTs.
_TOKEN = re.compile(r"^[A-Za-z0-9._~+/=\-]{16,512}$")
_APP_CODE = re.compile(r"^[A-Za-z0-9]{4,64}$")
_SEPARATORS = re.compile(r"[\s,;]+")


# --- Client ids ---------------------------------------------------------------------------
def normalise_client_id(value: str) -> str:
    return (value or "").strip().upper()


def validate_client_id(value: str) -> None:
    if not _CLIENT_ID.match(value or ""):
        raise ValidationError(CLIENT_ID_INVALID, code="client_id_invalid")


# --- Names --------------------------------------------------------------------------------
def validate_display_name(value: str) -> None:
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise ValidationError(DISPLAY_NAME_INVALID, code="display_name_invalid")


# --- Limits -------------------------------------------------------------------------------
def validate_lot_multiplier(value: Decimal) -> None:
    if value is None:
        return
    if value <= 0:
        raise ValidationError(LOT_MULTIPLIER_TOO_SMALL, code="lot_multiplier_too_small")
    if value > MAX_LOT_MULTIPLIER:
        raise ValidationError(LOT_MULTIPLIER_TOO_LARGE, code="lot_multiplier_too_large")
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        raise ValidationError(LOT_MULTIPLIER_TOO_PRECISE, code="lot_multiplier_too_precise")


# --- Product types ------------------------------------------------------------------------
def normalise_product_types(values: Iterable[str]) -> list[str]:
    """Upper-case, drop duplicates, keep the canonical order MIS, CNC, NRML (unknowns last)."""
    seen = {str(v).strip().upper() for v in values or () if str(v).strip()}
    known = [p for p in PRODUCT_TYPES if p in seen]
    return known + sorted(seen.difference(PRODUCT_TYPES))


def validate_product_types(values: object) -> None:
    if not isinstance(values, list) or not values:
        raise ValidationError(PRODUCT_TYPES_REQUIRED, code="product_types_required")
    errors = [
        ValidationError(PRODUCT_TYPE_UNKNOWN.format(value=v), code="product_type_unknown")
        for v in values
        if v not in PRODUCT_TYPES
    ]
    if len(set(values)) != len(values):
        errors.append(ValidationError("Each product type may appear once.", code="duplicate"))
    if errors:
        raise ValidationError(errors)


# --- Instruments --------------------------------------------------------------------------
def split_instruments(text: str) -> list[str]:
    """What a person typed (one per line, or separated by commas or spaces) → entries."""
    return [part for part in _SEPARATORS.split(text or "") if part]


def normalise_instruments(values: Iterable[str]) -> list[str]:
    """Upper-case "EXCHANGE:SYMBOL" entries, without duplicates, in the order given.

    Raises ValidationError naming every bad entry (the value is echoed: it is not a secret).
    """
    result: list[str] = []
    errors: list[ValidationError] = []
    for raw in values or ():
        entry = str(raw).strip().upper()
        if not entry:
            continue
        error = _instrument_error(entry)
        if error:
            errors.append(ValidationError(error, code="instrument_invalid"))
        elif entry not in result:
            result.append(entry)
    if errors:
        raise ValidationError(errors)
    if len(result) > MAX_INSTRUMENTS:
        raise ValidationError(TOO_MANY_INSTRUMENTS, code="too_many_instruments")
    return result


def _instrument_error(entry: str) -> str:
    shown = entry[:60]
    exchange, sep, symbol = entry.partition(":")
    if not sep or not exchange or not symbol:
        return INSTRUMENT_FORMAT.format(value=shown)
    if exchange not in EXCHANGES:
        return INSTRUMENT_EXCHANGE_UNKNOWN.format(value=shown)
    if not _SYMBOL.match(symbol):
        return INSTRUMENT_SYMBOL_INVALID.format(value=shown)
    return ""


def validate_instruments(values: object) -> None:
    if not isinstance(values, list):
        raise ValidationError(INSTRUMENT_FORMAT.format(value=values), code="instrument_invalid")
    errors = [
        ValidationError(error, code="instrument_invalid")
        for error in (_instrument_error(v) if isinstance(v, str) else "x" for v in values)
        if error
    ]
    if errors:
        raise ValidationError(errors)
    if len(values) > MAX_INSTRUMENTS:
        raise ValidationError(TOO_MANY_INSTRUMENTS, code="too_many_instruments")
    if len(set(values)) != len(values) or any(v != v.upper() for v in values):
        raise ValidationError("Instruments must be upper case and listed once.", code="duplicate")


# --- Credentials (never echoed back in a message) -----------------------------------------
def normalise_secret(value: str | None) -> str:
    return (value or "").strip()


def validate_api_key(value: str) -> None:
    if not _TOKEN.match(value):
        raise ValidationError(API_KEY_INVALID, code="api_key_invalid")


def validate_app_code(value: str) -> None:
    if not _APP_CODE.match(value):
        raise ValidationError(APP_CODE_INVALID, code="app_code_invalid")


def validate_api_secret(value: str) -> None:
    if not _TOKEN.match(value):
        raise ValidationError(API_SECRET_INVALID, code="api_secret_invalid")
