"""`python manage.py api_token USERNAME`: issue a bearer token for the JSON API (printed once).

    python manage.py api_token alice                  # issue (prints the token once)
    python manage.py api_token alice --name laptop    # issue with a label
    python manage.py api_token alice --list           # the user's tokens (prefixes only)
    python manage.py api_token alice --revoke ct_AbCd1234
    python manage.py api_token alice --revoke-all

Use it as `Authorization: Bearer <token>`. Only a digest is stored; issuing and revoking are
written to the audit trail.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from api import tokens
from api.models import ApiToken


class Command(BaseCommand):
    help = "Issue, list or revoke bearer tokens for the JSON API."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label, e.g. the script or machine")
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--list", action="store_true", help="list the user's tokens")
        action.add_argument("--revoke", metavar="PREFIX", help="revoke the token with this prefix")
        action.add_argument("--revoke-all", action="store_true", help="revoke every token")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        mine = ApiToken.objects.filter(user=user).order_by("-created_at")
        if options["list"]:
            for token in mine:
                state = (
                    f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
                )
                used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
                self.stdout.write(
                    f"{token.prefix}  {state:<24} last used {used:<17} {token.name}".rstrip()
                )
            if not mine.exists():
                self.stdout.write("No tokens.")
            return
        if options["revoke"] or options["revoke_all"]:
            targets = list(mine.filter(revoked_at__isnull=True))
            if options["revoke"]:
                targets = [t for t in targets if t.prefix == options["revoke"]]
                if not targets:
                    raise CommandError(f"No active token {options['revoke']!r} for this user.")
            revoked = sum(tokens.revoke(token=token) for token in targets)
            self.stdout.write(f"Revoked {revoked} token(s).")
            return
        try:
            issued = tokens.issue(user=user, name=options["name"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(issued.secret)
        self.stderr.write(
            f"Token {issued.token.prefix}… for {user.get_username()}: shown once, store it now. "
            "Use it as 'Authorization: Bearer <token>'."
        )
