"""Issuing, checking and revoking API tokens. Every issue and revocation is audited."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Master, User
from api.models import ApiToken
from trading.audit import record_audit

TOKEN_PREFIX = "ct_"  # noqa: S105 - a marker, not a secret
ROLE_NOT_ALLOWED = "API tokens are for masters and followers; staff use the admin."
USER_INACTIVE = "This user is inactive."
# How often a token's last-used time is written (not on every request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _master_of(user: User) -> Master | None:
    if user.role == User.Role.MASTER:
        return getattr(user, "master", None)
    if user.role == User.Role.FOLLOWER:
        follower = getattr(user, "follower", None)
        return follower.master if follower is not None else None
    return None


def issue(*, user: User, name: str = "") -> IssuedToken:
    if user.role not in (User.Role.MASTER, User.Role.FOLLOWER):
        raise ValueError(ROLE_NOT_ALLOWED)
    if not user.is_active:
        raise ValueError(USER_INACTIVE)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name[:80], prefix=raw[: len(TOKEN_PREFIX) + 8], digest=digest(raw)
        )
        record_audit(
            actor=None,
            action="api_token.issue",
            target=token,
            master=_master_of(user),
            after={"user": user.get_username(), "name": token.name, "prefix": token.prefix},
        )
    return IssuedToken(token=token, secret=raw)


def revoke(*, token: ApiToken, actor: User | None = None) -> bool:
    """Revoke one token; False if it already was. `actor`: the staff member, or None for the
    command line."""
    with transaction.atomic():
        now = timezone.now()
        changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=now
        )
        if changed:
            record_audit(
                actor=actor,
                action="api_token.revoke",
                target=token,
                master=_master_of(token.user),
                before={"prefix": token.prefix, "revoked": False},
                after={"prefix": token.prefix, "revoked": True},
            )
    return bool(changed)


def user_for(raw: str) -> User | None:
    """The active user an unrevoked token belongs to, or None."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 100:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=digest(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
