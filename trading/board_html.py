"""The board's table rows as HTML, formatted in Python.

The board partial is re-rendered for every follower whose trades changed, every 5 s. Django's
template engine spends about 13 µs on each `{{ variable }}` here (resolve, localize, escape):
some 400 of them for a page of 25 rows, most of the cost of a refresh (docs/BENCHMARKS.md).
The rows are therefore built in one pass from already formatted strings, every value escaped
with the standard library's `html.escape` (what Django's `escape` calls, without its lazy-
string wrapper); the rest of the board stays in `templates/trading/follower_board.html`.
"""

from __future__ import annotations

from html import escape

from django.utils.safestring import SafeString, mark_safe

from trading.selectors import BoardRow

# data-label: the column's name, shown beside each value when narrow screens stack the cells.
_ROW = (
    '<tr id="trade-%s" data-status="%s">'
    '<td class="nowrap" data-label="Time"><time datetime="%s">%s</time></td>'
    '<td data-label="Instrument"><span class="symbol">%s</span> '
    '<span class="muted small">%s</span></td>'
    '<td data-label="Side"><span class="side side-%s">%s</span></td>'
    '<td class="num" data-label="Quantity (master)"><span data-field="follower-qty">%s</span> '
    '<span class="muted">(<span data-field="master-qty">%s</span>)</span>%s</td>'
    '<td class="num" data-label="Price">%s</td>'
    '<td data-label="Status"><span class="badge badge-%s">%s</span></td>'
    '<td class="reason" data-label="Reason">%s</td>'
    "</tr>\n"
)


def _price_cell(row: BoardRow) -> str:
    if row.price_note == "market":
        return '<span class="muted">market</span>'
    if row.price_note:
        return f'{escape(row.price_text)} <span class="muted small">{escape(row.price_note)}</span>'
    return escape(row.price_text)


def _row(row: BoardRow) -> str:
    filled = (
        f'<br><span class="muted small">{escape(row.filled_note)}</span>' if row.filled_note else ""
    )
    status = escape(row.status)
    side = escape(row.side)
    return _ROW % (
        int(row.id),
        status,
        escape(row.time_iso),
        escape(row.time_text),
        escape(row.symbol),
        escape(row.details),
        side,
        side,
        int(row.quantity),
        int(row.master_quantity),
        filled,
        _price_cell(row),
        status,
        escape(row.status_label),
        escape(row.reason or "—"),
    )


def render_rows(rows: list[BoardRow]) -> SafeString:
    """Every value is escaped above (numbers are ints), so the whole is safe."""
    return mark_safe("".join(_row(row) for row in rows))  # noqa: S308
