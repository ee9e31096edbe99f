"""Sandbox accounts: create, show, daily login, list; and the sandbox vendor app.

Works whether or not the sandbox server runs (it writes the state file; a running server
picks the change up within a second)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sandbox.clock import Clock
from sandbox.store import Store, StoreError


class Command(BaseCommand):
    help = "Create and show sandbox broker accounts; record an account's daily sign-in."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--state", default=str(settings.SANDBOX_STATE_PATH))
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create an account and print its credentials")
        create.add_argument("client_id")
        create.add_argument("--funds", default="1000000")
        create.add_argument("--password", default=None)
        create.add_argument("--no-push", action="store_true", help="order push not enabled")
        show = sub.add_parser("show", help="print an account's credentials as JSON")
        show.add_argument("client_id")
        login = sub.add_parser("login", help="record today's sign-in (AliceBlue's daily rule)")
        login.add_argument("client_id")
        sub.add_parser("list", help="list the accounts")
        app = sub.add_parser("app", help="print the sandbox vendor app (and set its redirect URL)")
        app.add_argument("--redirect-url", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        store = Store(options["state"])
        try:
            self._handle(store, options)
        except StoreError as exc:
            raise CommandError(str(exc)) from None
        finally:
            store.close()

    def _handle(self, store: Store, options: dict[str, Any]) -> None:
        action = options["action"]
        if action == "create":
            account = store.create_account(
                options["client_id"],
                funds=options["funds"],
                password=options["password"],
                push_enabled=not options["no_push"],
            )
            self._print(store, account.client_id)
        elif action == "show":
            self._print(store, options["client_id"])
        elif action == "login":
            account = store.require(options["client_id"])
            day = Clock().today()
            store.record_daily_login(account.client_id, day, "command")
            self.stdout.write(f"{account.client_id} signed in for {day.isoformat()} (IST)\n")
        elif action == "list":
            for account in store.accounts():
                self.stdout.write(f"{account.client_id}\t{account.funds}\t{account.name}\n")
        elif action == "app":
            app = (
                store.set_redirect_url(options["redirect_url"])
                if options["redirect_url"]
                else store.vendor_app()
            )
            self.stdout.write(json.dumps(app.__dict__, indent=2) + "\n")

    def _print(self, store: Store, client_id: str) -> None:
        account = store.require(client_id)
        app = store.vendor_app()
        data = {
            "client_id": account.client_id,
            "password": account.password,
            "api_key": account.api_key,
            "app_code": app.app_code,
            "api_secret": app.api_secret,
            "redirect_url": app.redirect_url,
            "funds": str(account.funds),
            "push_enabled": account.push_enabled,
        }
        self.stdout.write(json.dumps(data, indent=2) + "\n")
