"""Diagnose one account's AliceBlue connection: session state, and with --live a profile,
funds and order-book call through the real client (counts against the request budget).

    python manage.py broker_check CLIENT_ID [--connect] [--live]

Prints JSON; never prints a secret.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import BrokerAccount
from trading.brokers import sessions
from trading.brokers.aliceblue.client import AliceBlueClient
from trading.brokers.aliceblue.errors import BrokerError


class Command(BaseCommand):
    help = "Check an account's AliceBlue session (and optionally call the broker)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("client_id")
        parser.add_argument(
            "--connect", action="store_true", help="log in with the stored API key first"
        )
        parser.add_argument("--live", action="store_true", help="call profile, funds, book")

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = list(BrokerAccount.objects.filter(client_id__iexact=options["client_id"]))
        if not accounts:
            raise CommandError(f"no broker account {options['client_id']}")
        for account in accounts:
            self.stdout.write(json.dumps(self._check(account, options), default=str))

    def _check(self, account: BrokerAccount, options: dict[str, Any]) -> dict[str, Any]:
        report: dict[str, Any] = {
            "account_id": account.pk,
            "client_id": account.client_id,
            "login_method": account.login_method,
            "generation": sessions.generation_for(account).value,
        }
        if options["connect"]:
            try:
                sessions.connect_api_key(account=account)
                report["connect"] = "ok"
            except (BrokerError, sessions.ConnectError) as exc:
                report["connect"] = f"{exc.__class__.__name__}: {exc}"
        view = sessions.session_view(account)
        report["session"] = {
            "state": view.state,
            "trading_day": view.trading_day,
            "push": view.push_state,
            "last_error": view.last_error,
        }
        if options["live"]:
            try:
                session = sessions.session_for(account=account)
                with AliceBlueClient(session) as broker:
                    profile = broker.profile()
                    funds = broker.funds()
                    book = broker.order_book()
                report["live"] = {
                    "profile_client_id": profile.client_id,
                    "available_cash": funds.available_cash,
                    "orders_today": len(book),
                }
            except BrokerError as exc:
                report["live"] = f"{exc.__class__.__name__}: {exc}"
        return report
