"""The append-only audit trail of people's actions (registration, limits, pause, credentials,
cancels, key rotation). Call `record_audit` inside the same transaction as the change."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest

from accounts.models import Master, User
from copytrade.lib.secret import masked
from trading.models import AuditEvent

_SECRET_MARKERS = ("key", "secret", "password", "token", "session", "checksum")


def mask_values(values: dict[str, Any] | None) -> dict[str, Any]:
    """Mask every value whose name says it is secret; keep the rest JSON-friendly."""
    result: dict[str, Any] = {}
    for name, value in (values or {}).items():
        if any(marker in name.lower() for marker in _SECRET_MARKERS) and value:
            result[name] = masked(str(value))
        elif isinstance(value, dict):
            result[name] = mask_values(value)
        elif isinstance(value, (str, int, float, bool, list)) or value is None:
            result[name] = value
        else:
            result[name] = str(value)
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
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor,
        actor_repr=actor.get_username() if actor is not None else "system",
        action=action,
        target_type=target._meta.label if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        master=master,
        before=mask_values(before),
        after=mask_values(after),
        ip_address=_client_ip(request),
    )
