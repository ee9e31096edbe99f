from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import create_master


class Command(BaseCommand):
    help = "Add a master account; prints its generated password once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            _master, password = create_master(
                username=options["username"],
                email=options["email"],
                actor_repr="manage.py createmaster",
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"Master {options['username']!r} created.")
        self.stdout.write(f"Password (shown once): {password}")
        self.stdout.write("A second factor (TOTP) is enrolled at the first login.")
