"""Fault injection, matching settings and protocol dialects: names, defaults, validation.

Faults and matching settings apply per account or globally (scope "*"); an account's own
value wins over the global one. Dialects are global. All three live in the state file, so a
management command changes them in a running server (it re-reads within ~250 ms).
"""

from __future__ import annotations

from typing import Any

# name -> (default, type, description)
FAULTS: dict[str, tuple[Any, type, str]] = {
    "latency_ms": (0, int, "fixed delay added to every API answer (ms)"),
    "jitter_ms": (0, int, "extra random delay, uniform 0..jitter_ms (ms)"),
    "error_rate": (0.0, float, "fraction of API requests answered with an HTTP 5xx"),
    "error_status": (503, int, "the 5xx status used by error_rate"),
    "rate_limit_rate": (0.0, float, "fraction of API requests answered with HTTP 429"),
    "order_timeout_rate": (
        0.0,
        float,
        "fraction of place/modify/cancel requests that are carried out but never answered",
    ),
    "timeout_hold_ms": (15000, int, "how long an unanswered request is held before the drop"),
    "book_delay_ms": (0, int, "new orders appear in books/history only after this delay (ms)"),
    "push_silent": (False, bool, "order-notify sockets stay open but receive nothing"),
    "push_disabled": (False, bool, "createWsToken answers HTTP 200 with an empty body"),
}
MATCHING: dict[str, tuple[Any, type, str]] = {
    "partial_fill_qty": (
        0,
        int,
        "fill at most this quantity (order units) per matching step; 0 = fill at once",
    ),
}
DIALECTS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "g3_trigger_pending": (
        "TRIGGER PENDING",
        ("TRIGGER PENDING", "TRIGGER_PENDING"),
        "Open API orderStatus of an untriggered stop order",
    ),
    "g3_error_envelope": (
        "not_ok",
        ("not_ok", "status_code"),
        'Open API errors: {"status":"Not_Ok","message":"EC9xx"} or {"status":"EC9xx"}',
    ),
    "g3_expired_http": ("200", ("200", "401"), "HTTP status of an EC087 answer"),
    "g2_not_ok": ("Not_Ok", ("Not_Ok", "Not_ok"), "ANT API stat value of an error"),
    "g2_emsg_key": ("emsg", ("emsg", "Emsg"), "ANT API key of an error text"),
    "mcx_quantity": ("lots", ("lots", "units"), "MCX order quantity counts lots or units"),
    "normal_product": (
        "NORMAL",
        ("NORMAL", "NRML"),
        "Open API spelling of the carry-forward product in answers",
    ),
    "om_cancelled": ("CANCELED", ("CANCELED", "CANCELLED"), "order-notify status of a cancel"),
    "om_trigger_pending": (
        "TRIGGER_PENDING",
        ("TRIGGER_PENDING", "TRIGGER PENDING"),
        "order-notify status of an untriggered stop order",
    ),
    "g2_amo_ack_suffix": (
        "off",
        ("off", "on"),
        'ANT API AMO ack as "<no>-after market order req received"',
    ),
}


class OptionError(ValueError):
    pass


def _coerce(name: str, kind: type, value: Any) -> Any:
    try:
        if kind is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if kind is int:
            number = int(value)
            if number < 0:
                raise ValueError(value)
            return number
        if kind is float:
            rate = float(value)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(value)
            return rate
    except (TypeError, ValueError):
        raise OptionError(f"{name}: invalid value {value!r}") from None
    return value


def validate_faults(values: dict[str, Any]) -> dict[str, Any]:
    return _validate(values, FAULTS, "fault")


def validate_matching(values: dict[str, Any]) -> dict[str, Any]:
    return _validate(values, MATCHING, "matching setting")


def _validate(values: dict[str, Any], table: dict[str, tuple[Any, type, str]], what: str):
    out = {}
    for name, value in values.items():
        if name not in table:
            raise OptionError(f"unknown {what} {name!r}; known: {', '.join(sorted(table))}")
        out[name] = _coerce(name, table[name][1], value)
    return out


def validate_dialect(values: dict[str, Any]) -> dict[str, str]:
    out = {}
    for name, value in values.items():
        if name not in DIALECTS:
            raise OptionError(f"unknown dialect {name!r}; known: {', '.join(sorted(DIALECTS))}")
        text = str(value)
        if isinstance(value, bool):
            text = "on" if value else "off"
        if text not in DIALECTS[name][1]:
            allowed = " | ".join(DIALECTS[name][1])
            raise OptionError(f"dialect {name}: {text!r} is not one of {allowed}")
        out[name] = text
    return out


def default_faults() -> dict[str, Any]:
    return {name: spec[0] for name, spec in FAULTS.items()}


def default_matching() -> dict[str, Any]:
    return {name: spec[0] for name, spec in MATCHING.items()}


def default_dialect() -> dict[str, str]:
    return {name: spec[0] for name, spec in DIALECTS.items()}
