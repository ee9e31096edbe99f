"""Writes for people and their accounts. Views, admin actions, commands and the API all call
these; each runs in one transaction and leaves an audit row beside its change."""

from __future__ import annotations

import secrets
import string

from django.db import transaction

from accounts.models import Master, User
from trading.audit import record_audit

_PASSWORD_ALPHABET = string.ascii_letters + string.digits


def generate_password(length: int = 20) -> str:
    """A strong random password (about 119 bits for 20 characters)."""
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))


def create_master(
    *, username: str, email: str = "", actor: User | None = None
) -> tuple[Master, str]:
    """Create a master account with a generated password; return it with the password."""
    password = generate_password()
    with transaction.atomic():
        user = User(username=username, email=email, role=User.Role.MASTER)
        user.set_password(password)
        user.full_clean()
        user.save()
        master = Master.objects.create(user=user)
        record_audit(
            actor=actor,
            action="master.create",
            target=master,
            master=master,
            after={"username": username, "email": email},
        )
    return master, password
