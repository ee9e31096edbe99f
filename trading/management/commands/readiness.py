"""`python manage.py readiness [--master USERNAME]`: check now which followers would not receive
copies today and why; print a table and store the result for the master dashboard.

The same check the copier runs before market open (`trading.engine.lifecycle.readiness`).
Exits 0 whatever it finds (a follower that needs its login is a normal state); an unknown
master is an error.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Master
from copytrade.lib import clock
from trading.engine.lifecycle import readiness
from trading.models import ReadinessItem, ReadinessReport

UNKNOWN_MASTER = "No master with the username {username!r}."


class Command(BaseCommand):
    help = "List every follower that would not receive copies today, and why (stored too)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--master", metavar="USERNAME", help="one master (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        masters = Master.objects.select_related("user").order_by("user__username")
        if options["master"]:
            masters = masters.filter(user__username=options["master"])
            if not masters.exists():
                raise CommandError(UNKNOWN_MASTER.format(username=options["master"]))
        for master in masters:
            report = readiness.check(master=master)
            self._print(master, report)

    def _print(self, master: Master, report: ReadinessReport) -> None:
        at = report.created_at.astimezone(clock.IST).strftime("%d %b %Y %H:%M IST")
        self.stdout.write(f"Master {master.user.get_username()} — {at}: {report}")
        if report.note:
            self.stdout.write(f"  Note: {report.note}")
        items = list(
            ReadinessItem.objects.filter(report=report)
            .select_related("follower")
            .order_by("follower__display_name", "follower_id", "pk")
        )
        if not items:
            return
        rows = [("FOLLOWER", "REASON", "DETAIL")] + [
            (i.follower.display_name, i.get_reason_display(), i.detail) for i in items
        ]
        widths = [max(len(str(row[n])) for row in rows) for n in range(2)]
        for name, reason, detail in rows:
            self.stdout.write(f"  {name:<{widths[0]}}  {reason:<{widths[1]}}  {detail}")
