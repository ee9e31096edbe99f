"""Broker order tags: the handle that finds a copy trade in a follower's order book.

A tag is derived, not random, so it is known before the order is sent and survives a crash:
`make_tag(event_id, follower_id, leg)` gives e.g. ``CTK70000004000A02`` —

    "CT"            copytrade, place order (issue 5 may add other prefixes for its rows)
    2 characters    this installation (from SECRET_KEY): a re-created database never reuses
                    a tag another installation already sent to the same broker account
    7 characters    the master order event id, base 36, fixed width
    5 characters    the follower id, base 36, fixed width
    2 characters    the leg, base 36, fixed width

18 characters, only [0-9A-Z]: within AliceBlue's 50-character limit (EC971) and plain
alphanumerics, which both API generations accept and echo back (G3 `orderTag`, G2/push
`remarks`). Fixed widths and one case make two different tags different under any case
folding the broker might apply; lookups compare case-insensitively.
"""

from __future__ import annotations

import functools
import hashlib

from django.conf import settings

PLACE_PREFIX = "CT"
_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_WIDTHS = {"event": 7, "follower": 5, "leg": 2}
MAX_TAG_LENGTH = 20


def _b36(value: int, width: int, what: str) -> str:
    if value < 0:
        raise ValueError(f"{what} must be non-negative")
    digits = []
    while value:
        value, rest = divmod(value, 36)
        digits.append(_DIGITS[rest])
    text = "".join(reversed(digits)) or "0"
    if len(text) > width:
        raise ValueError(f"{what} {value} does not fit in {width} base-36 digits")
    return text.rjust(width, "0")


def installation_code() -> str:
    """Two base-36 characters identifying this installation (derived from SECRET_KEY)."""
    return _installation_code(str(settings.SECRET_KEY))


@functools.lru_cache(maxsize=4)
def _installation_code(secret_key: str) -> str:
    digest = hashlib.sha256(f"copytrade-tag:{secret_key}".encode()).digest()
    return _b36(int.from_bytes(digest[:4], "big") % (36 * 36), 2, "installation")


def make_tag(event_id: int, follower_id: int, leg: int, *, prefix: str = PLACE_PREFIX) -> str:
    """The deterministic broker order tag of one leg of one event for one follower."""
    tag = (
        prefix
        + installation_code()
        + _b36(event_id, _WIDTHS["event"], "event id")
        + _b36(follower_id, _WIDTHS["follower"], "follower id")
        + _b36(leg, _WIDTHS["leg"], "leg")
    )
    assert len(tag) <= MAX_TAG_LENGTH and tag.isalnum()
    return tag


def same_tag(a: str, b: str) -> bool:
    """Tags compare case-insensitively, ignoring surrounding blanks (brokers may pad)."""
    return bool(a) and a.strip().upper() == b.strip().upper()
