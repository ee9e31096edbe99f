"""Remove a person's authenticator app and backup codes (a lost phone without backup codes).

The next login enrols a new app. Audited.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from accounts.second_factor import reset_second_factor


class Command(BaseCommand):
    help = "Remove USERNAME's second-factor devices; the next login enrols a new one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        removed = reset_second_factor(
            user=user, actor=None, actor_repr="manage.py reset_second_factor"
        )
        self.stdout.write(
            f"Removed {removed} second-factor device(s) of {user.username!r}; "
            "the next login enrols a new authenticator app."
        )
