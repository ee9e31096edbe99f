"""Encryption at rest for broker credentials: MultiFernet over settings.CREDENTIAL_KEYS.

The first key encrypts; every key decrypts. `rotate()` re-encrypts a token under the first
key (see `manage.py rotate_credentials`).
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from copytrade.lib.secret import Secret


class CredentialDecryptionError(Exception):
    """A stored credential cannot be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "CREDENTIAL_KEYS must be url-safe base64 Fernet keys (32 bytes each)"
        ) from exc


def fernet() -> MultiFernet:
    return _multifernet(tuple(settings.CREDENTIAL_KEYS))


@lru_cache(maxsize=4)
def _single(key: str) -> Fernet:
    try:
        return Fernet(key.encode())
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "CREDENTIAL_KEYS must be url-safe base64 Fernet keys (32 bytes each)"
        ) from exc


def is_current(token: str) -> bool:
    """Is this token already encrypted under the newest key (the first of CREDENTIAL_KEYS)?"""
    if not token:
        return True
    try:
        _single(settings.CREDENTIAL_KEYS[0]).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def seal(value: str) -> tuple[str, str]:
    """Encrypt a secret; return (token, hint) where hint is at most the last 4 characters."""
    if not value:
        return "", ""
    Secret(value)  # remember it so logs mask it
    token = fernet().encrypt(value.encode()).decode()
    hint = value[-4:] if len(value) > 8 else ""
    return token, hint


def open_sealed(token: str) -> Secret | None:
    if not token:
        return None
    try:
        return Secret(fernet().decrypt(token.encode()).decode())
    except InvalidToken as exc:
        raise CredentialDecryptionError(
            "a stored credential cannot be decrypted with CREDENTIAL_KEYS"
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt a token under the newest key (no-op for an empty token)."""
    if not token:
        return token
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise CredentialDecryptionError(
            "a stored credential cannot be decrypted with CREDENTIAL_KEYS"
        ) from exc
