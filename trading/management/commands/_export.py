"""Shared by `export_audit` and `export_copy_trades`: a date range in, CSV out (a file or
stdout), streamed in constant memory."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trading import exports
from trading.selectors import trading_day


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"Not a date (YYYY-MM-DD): {value!r}") from exc


class ExportCommand(BaseCommand):
    export: exports.Export

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="start", required=True, help="first IST day, YYYY-MM-DD")
        parser.add_argument(
            "--to", dest="end", help="last IST day, YYYY-MM-DD (inclusive; default today)"
        )
        parser.add_argument("--output", "-o", help="write to this file (default: stdout)")

    def handle(self, *args: Any, **options: Any) -> None:
        start = _day(options["start"])
        end = _day(options["end"]) if options["end"] else trading_day()
        if end < start:
            raise CommandError("--to is before --from.")
        rows = 0

        def counted() -> Any:
            nonlocal rows
            for row in self.export.rows(start, end):
                rows += 1
                yield row

        chunks = exports.csv_chunks(self.export.header, counted())
        if options["output"]:
            path = Path(options["output"])
            with path.open("w", encoding="utf-8", newline="") as handle:
                for chunk in chunks:
                    handle.write(chunk)
            self.stderr.write(f"Wrote {rows} row(s) to {path}.")
        else:
            for chunk in chunks:
                self.stdout.write(chunk, ending="")
            self.stdout.flush()
            self.stderr.write(f"Wrote {rows} row(s).")
