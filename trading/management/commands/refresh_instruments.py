"""Download AliceBlue's contract master and upsert it into the Instrument table.

    python manage.py refresh_instruments                 # NSE BSE NFO BFO MCX, once per IST day
                                                         # (the sandbox serves no BFO file)
    python manage.py refresh_instruments --exchange NFO --force

Skips an exchange already refreshed today (IST) unless --force; exits 1 if any failed.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trading.brokers import sessions
from trading.brokers.aliceblue import contracts


class Command(BaseCommand):
    help = "Refresh the AliceBlue contract master (instruments) for today."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--exchange",
            action="append",
            choices=contracts.EXCHANGES,
            help="exchange to refresh (repeatable); default: "
            + " ".join(contracts.DEFAULT_EXCHANGES),
        )
        parser.add_argument("--force", action="store_true", help="refresh even if fresh today")

    def handle(self, *args: Any, **options: Any) -> None:
        exchanges = options["exchange"] or contracts.default_exchanges()
        results = contracts.refresh(exchanges, day=sessions.trading_day(), force=options["force"])
        for result in results:
            self.stdout.write(json.dumps(result.__dict__))
        failed = [r.exchange for r in results if r.status == "failed"]
        if failed:
            raise CommandError(f"contract master refresh failed for {', '.join(failed)}")
