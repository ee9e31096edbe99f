"""`python manage.py export_copy_trades --from 2026-01-01 --to 2026-12-31 [-o trades.csv]`:
every copy trade decided in a range of IST days, as CSV."""

from trading import exports
from trading.management.commands._export import ExportCommand


class Command(ExportCommand):
    help = "Export copy trades for a date range as CSV (streamed, constant memory)."
    export = exports.COPY_TRADES
