"""`python manage.py export_audit --from 2026-01-01 --to 2026-12-31 [-o audit.csv]`: the audit
trail of people's actions for a range of IST days, as CSV."""

from trading import exports
from trading.management.commands._export import ExportCommand


class Command(ExportCommand):
    help = "Export the audit trail for a date range as CSV (streamed, constant memory)."
    export = exports.AUDIT
