"""Bearer tokens for the JSON API (`python manage.py api_token USERNAME`).

Only a SHA-256 digest of each token is stored: the token itself is printed once. A token is
256 random bits, so a plain digest is enough (no slow hash needed: nothing to brute-force).
"""

from __future__ import annotations

from django.db import models

from accounts.models import User


class ApiToken(models.Model):
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=80, blank=True, default="")
    # The first characters of the token, to tell tokens apart in lists and the audit trail.
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="api_token_by_user")]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"{self.prefix}… ({self.user.get_username()}, {state})"

    @property
    def active(self) -> bool:
        return self.revoked_at is None
