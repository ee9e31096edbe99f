"""CSV exports of the audit trail and of copy trades for a date range (SEBI: five years).

Rows are read in keyset batches (`id > last ORDER BY id LIMIT n`): each batch is a short
query, so memory stays constant, no transaction or server-side cursor is held open for the
length of a five-year download (SQLite's WAL can keep checkpointing, PostgreSQL's vacuum is
not held back), and the same code streams to an HTTP response (the admin) or to a file (the
`export_audit` / `export_copy_trades` commands).

Cells that a spreadsheet would run as a formula (=, +, -, @ ...) are prefixed with a quote.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from trading.models import AuditEvent, CopyTrade
from trading.selectors import IST, day_bounds

BATCH = 2000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(IST).isoformat()
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return value
    text = str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


@dataclass(frozen=True)
class Export:
    name: str
    header: list[str]
    rows: Callable[[date, date], Iterator[list[Any]]]


def _batched(queryset: QuerySet[Any], fields: list[str]) -> Iterator[tuple[Any, ...]]:
    """Rows of `queryset` in id order, `BATCH` at a time, each batch its own short query.

    Ids grow with time, so the batches walk the primary key: no sort, no index on the date
    needed, two linear passes at most (the rows before and after the range)."""
    last = 0
    while True:
        batch = list(queryset.filter(pk__gt=last).order_by("pk").values_list("pk", *fields)[:BATCH])
        if not batch:
            return
        for row in batch:
            yield row[1:]
        last = batch[-1][0]


# --- Copy trades ---------------------------------------------------------------------------------
COPY_TRADE_FIELDS = [
    ("id", "id"),
    ("decided_at", "decided_at"),
    ("master", "master__user__username"),
    ("follower", "follower__user__username"),
    ("follower_name", "follower__display_name"),
    ("master_order", "event__master_order__broker_order_id"),
    ("event", "event__kind"),
    ("leg", "leg"),
    ("action", "action"),
    ("intent", "intent"),
    ("manual", "manual"),
    ("exchange", "exchange"),
    ("trading_symbol", "trading_symbol"),
    ("side", "side"),
    ("order_type", "order_type"),
    ("product", "product"),
    ("price", "price"),
    ("trigger_price", "trigger_price"),
    ("master_quantity", "master_quantity"),
    ("lot_multiplier", "lot_multiplier"),
    ("quantity", "quantity"),
    ("sizing_note", "sizing_note"),
    ("status", "status"),
    ("reason_code", "reason_code"),
    ("reason", "reason"),
    ("tag", "tag"),
    ("broker_order_id", "broker_order_id"),
    ("broker_status", "broker_status"),
    ("broker_error_code", "broker_error_code"),
    ("broker_error_message", "broker_error_message"),
    ("filled_quantity", "filled_quantity"),
    ("average_price", "average_price"),
    ("slippage", "slippage"),
    ("master_accepted_at", "master_accepted_at"),
    ("received_at", "received_at"),
    ("sent_at", "sent_at"),
    ("acknowledged_at", "acknowledged_at"),
]


def copy_trade_rows(start: date, end: date) -> Iterator[list[Any]]:
    """Copy trades decided from `start` to `end` (IST days, inclusive)."""
    since, _ = day_bounds(start)
    _, until = day_bounds(end)
    qs = CopyTrade.objects.filter(decided_at__gte=since, decided_at__lt=until)
    for row in _batched(qs, [source for _, source in COPY_TRADE_FIELDS]):
        yield [_cell(v) for v in row]


# --- Audit trail ---------------------------------------------------------------------------------
AUDIT_FIELDS = [
    ("id", "id"),
    ("at", "at"),
    ("actor", "actor_repr"),
    ("action", "action"),
    ("target_type", "target_type"),
    ("target_id", "target_id"),
    ("target", "target_repr"),
    ("master", "master__user__username"),
    ("before", "before"),
    ("after", "after"),
    ("ip_address", "ip_address"),
]


def audit_rows(start: date, end: date) -> Iterator[list[Any]]:
    """Audit events from `start` to `end` (IST days, inclusive)."""
    since, _ = day_bounds(start)
    _, until = day_bounds(end)
    qs = AuditEvent.objects.filter(at__gte=since, at__lt=until)
    for row in _batched(qs, [source for _, source in AUDIT_FIELDS]):
        yield [_cell(v) for v in row]


COPY_TRADES = Export("copy-trades", [name for name, _ in COPY_TRADE_FIELDS], copy_trade_rows)
AUDIT = Export("audit", [name for name, _ in AUDIT_FIELDS], audit_rows)


def csv_chunks(header: list[str], rows: Iterable[list[Any]], *, lines: int = 500) -> Iterator[str]:
    """CSV text in chunks of `lines` rows (UTF-8 with a BOM so spreadsheets read it right)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(header)
    pending = 1
    for row in rows:
        writer.writerow(row)
        pending += 1
        if pending >= lines:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()


def filename(export: Export, start: date, end: date) -> str:
    return f"copytrade-{export.name}-{start:%Y%m%d}-{end:%Y%m%d}.csv"
