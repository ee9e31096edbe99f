"""A wrapper that keeps a secret out of reprs, f-strings, logs and templates.

`Secret("abc...").reveal()` is the only way to read the value. Every secret ever wrapped is
remembered (bounded) so the logging filter can mask it wherever it still leaks into a message.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

_MAX_REMEMBERED = 10_000
_MIN_MASKED_LENGTH = 6
_known: OrderedDict[str, None] = OrderedDict()
_lock = threading.Lock()


def remember(value: str) -> None:
    """Register a value so that logs mask it even if it leaks through some other path."""
    if len(value) < _MIN_MASKED_LENGTH:
        return
    with _lock:
        _known[value] = None
        _known.move_to_end(value)
        while len(_known) > _MAX_REMEMBERED:
            _known.popitem(last=False)


def known_secrets() -> list[str]:
    with _lock:
        # Longest first so a secret that contains another is masked whole.
        return sorted(_known, key=len, reverse=True)


def mask(text: str) -> str:
    """Replace every remembered secret in text by a masked form."""
    for value in known_secrets():
        if value in text:
            text = text.replace(value, masked(value))
    return text


def masked(value: str) -> str:
    """`****abcd`: at most the last four characters, and none of a short value."""
    if len(value) <= 8:
        return "****"
    return "****" + value[-4:]


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value
        remember(value)

    def reveal(self) -> str:
        return self._value

    @property
    def last4(self) -> str:
        return self._value[-4:] if len(self._value) > 8 else ""

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return f"Secret({masked(self._value)!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")
