"""The append-only audit trail of people's actions (registration, limits, pause, credentials,
cancels, key rotation). Call `record_audit` inside the same transaction as the change, so the
row exists exactly when the change does.

Before/after values are masked here, whatever the caller passed: any value whose name says it
is secret (key, secret, password, token, session, checksum) keeps at most its last four
characters. Callers that want to show which key is stored pass `masked(value)` themselves.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.db import models
from django.http import HttpRequest

from accounts.models import Master, User
from copytrade.lib.secret import masked
from trading.models import AuditEvent

_SECRET_MARKERS = ("key", "secret", "password", "token", "session", "checksum")
# Already masked by the caller (`masked()`): "****" or "****abcd"; or a plain statement.
_ALREADY_MASKED = re.compile(r"^\*{4}[^*\s]{0,4}$")
_SAFE_STATEMENTS = frozenset({"not set", "unchanged", "changed", "removed"})


def _is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


def _mask_secret(value: Any) -> Any:
    if value in (None, "", False):
        return value
    text = str(value)
    if _ALREADY_MASKED.match(text) or text in _SAFE_STATEMENTS:
        return text
    return masked(text)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return mask_values(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def mask_values(values: dict[str, Any] | None) -> dict[str, Any]:
    """Mask every value whose name says it is secret; keep the rest JSON-friendly."""
    result: dict[str, Any] = {}
    for name, value in (values or {}).items():
        if _is_secret_name(name) and not isinstance(value, (dict, bool)):
            result[name] = (
                [_mask_secret(v) for v in value]
                if isinstance(value, (list, tuple))
                else _mask_secret(value)
            )
        else:
            result[name] = _plain(value)
    return result


def _client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record_audit(
    *,
    actor: User | None,
    action: str,
    target: models.Model | None = None,
    master: Master | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    actor_repr: str = "",
) -> AuditEvent:
    """Append one audit row. `actor_repr` names a non-person actor (e.g. a command)."""
    return AuditEvent.objects.create(
        actor=actor,
        actor_repr=(actor.get_username() if actor is not None else actor_repr or "system")[:150],
        action=action,
        target_type=target._meta.label if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        master=master,
        before=mask_values(before),
        after=mask_values(after),
        ip_address=_client_ip(request),
    )
