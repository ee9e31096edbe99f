"""AliceBlue's contract master: download per exchange, parse by header name, upsert into
`trading.models.Instrument`.

The files (CONTRACTS.md) are plain CSV with one header row; column order differs between
exchanges and over time (NFO vs BFO swap two columns; MCX grew `FreezeQty`, then
`freeze_qty,Board Lot Qty`), so every field is read by its header name, case-insensitively.

Units. Our quantities are units (shares, contract units). For MCX the 2024+ files put 1 in
`Lot Size` and the units per lot in `Board Lot Qty`; older files put the units in `Lot Size`.
Either way an MCX instrument is stored with `lot_size = board_lot_quantity = units per lot`
and `freeze_quantity` in units (the file's freeze column counts lots — inferred,
CONTRACTS.md §4.1), so sizing and freeze splitting work in one unit and the client converts
to lots on the wire when the broker counts lots (`ALICEBLUE_MCX_QUANTITY`).

NSE/NFO files carry no freeze column; index derivatives get NSE's published per-order
freeze limits from `INDEX_FREEZE_UNITS` (data, CONTRACTS.md §3.3, Sep 2025).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import requests
from django.conf import settings
from django.db import transaction

from trading.brokers.aliceblue.errors import BrokerUnavailable, excerpt
from trading.models import Instrument

logger = logging.getLogger("trading.brokers.aliceblue")

EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "MCX", "CDS", "BCD")
DEFAULT_EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "MCX")

# NSE quantity-freeze limits for index derivatives, units per order (1 Sep 2025).
INDEX_FREEZE_UNITS = {
    "NIFTY": 1800,
    "BANKNIFTY": 900,
    "FINNIFTY": 1800,
    "MIDCPNIFTY": 2800,
    "NIFTYNXT50": 600,
}


def default_exchanges() -> list[str]:
    """The files to load: AliceBlue's five; the sandbox broker serves no BFO file."""
    if settings.ALICEBLUE_BROKER == "sandbox":
        return [e for e in DEFAULT_EXCHANGES if e != "BFO"]
    return list(DEFAULT_EXCHANGES)


_UPDATE_FIELDS = [
    "trading_symbol",
    "symbol",
    "name",
    "segment",
    "instrument_type",
    "option_type",
    "strike",
    "expiry",
    "lot_size",
    "tick_size",
    "freeze_quantity",
    "board_lot_quantity",
    "refreshed_on",
]


class ContractFileError(ValueError):
    """A contract file without the columns we need."""


@dataclass(frozen=True)
class ContractRow:
    exchange: str
    token: str
    trading_symbol: str
    symbol: str
    name: str
    segment: str
    instrument_type: str
    option_type: str
    strike: Decimal | None
    expiry: date | None
    lot_size: int
    tick_size: Decimal
    freeze_quantity: int | None
    board_lot_quantity: int


def _key(name: str) -> str:
    return " ".join(name.replace("_", " ").strip().lower().split())


def _dec(value: str | None) -> Decimal | None:
    if value is None or not value.strip() or value.strip().lower() in ("nan", "na", "--"):
        return None
    try:
        return Decimal(value.strip())
    except InvalidOperation:
        return None


def _int(value: str | None) -> int | None:
    number = _dec(value)
    return int(number) if number is not None else None


def _token(value: str | None) -> str:
    number = _dec(value)
    if number is None:
        return ""
    return str(int(number))  # "1594.0" (pandas float) → "1594"


def _date(value: str | None) -> date | None:
    if not value or not value.strip():
        return None
    raw = value.strip()
    for fmt in ("%Y-%m-%d", "%d-%m-%Y", "%d-%b-%Y", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    if raw.isdigit():  # epoch milliseconds (JSON V2 variant)
        from trading.brokers.aliceblue.protocol import when

        parsed = when(raw)
        return parsed.date() if parsed else None
    return None


def parse_csv(exchange: str, content: str | bytes) -> list[ContractRow]:
    """Parse one exchange file. Rows without a token or trading symbol are skipped."""
    text_content = content.decode("utf-8-sig") if isinstance(content, bytes) else content
    reader = csv.reader(io.StringIO(text_content.lstrip("\ufeff")))
    try:
        header = next(reader)
    except StopIteration:
        raise ContractFileError(f"{exchange}: empty contract file") from None
    index = {_key(name): i for i, name in enumerate(header)}
    for needed in ("token", "trading symbol"):
        if needed not in index:
            raise ContractFileError(f"{exchange}: no '{needed}' column in {header[:14]}")

    def get(row: list[str], *names: str) -> str:
        for name in names:
            i = index.get(name)
            if i is not None and i < len(row):
                return row[i].strip()
        return ""

    rows: list[ContractRow] = []
    for raw in reader:
        if not raw or not any(cell.strip() for cell in raw):
            continue
        segment = get(raw, "exchange segment").lower()
        if segment.endswith("_idx"):
            continue  # index rows inside MCX.csv are not tradeable
        token = _token(get(raw, "token"))
        tsym = get(raw, "trading symbol")
        if not token or not tsym:
            continue
        row_exchange = (get(raw, "exch") or exchange).upper()
        option_type = get(raw, "option type").upper()
        if option_type not in ("CE", "PE"):
            option_type = ""
        strike = _dec(get(raw, "strike price"))
        if not option_type or (strike is not None and strike <= 0):
            strike = None
        lot = _int(get(raw, "lot size")) or 1
        board = _int(get(raw, "board lot qty")) or 0
        freeze = _int(get(raw, "freeze qty", "freezeqty"))
        symbol = get(raw, "symbol")
        if row_exchange == "MCX":
            units = board if board > 0 and lot == 1 else lot
            lot, board = units, units
            freeze = freeze * units if freeze else None
        else:
            board = board or 1
            if freeze is None and row_exchange == "NFO":
                freeze = INDEX_FREEZE_UNITS.get(symbol.upper())
        rows.append(
            ContractRow(
                exchange=row_exchange,
                token=token,
                trading_symbol=tsym[:64],
                symbol=symbol[:40],
                name=(get(raw, "instrument name") or get(raw, "formatted ins name"))[:128],
                segment=segment[:16],
                instrument_type=get(raw, "instrument type")[:16],
                option_type=option_type,
                strike=strike,
                expiry=_date(get(raw, "expiry date")),
                lot_size=max(lot, 1),
                tick_size=_dec(get(raw, "tick size")) or Decimal("0.05"),
                freeze_quantity=freeze if freeze and freeze > 0 else None,
                board_lot_quantity=max(board, 1),
            )
        )
    return rows


def contract_url(exchange: str) -> str:
    return f"{settings.ALICEBLUE_CONTRACT_URL.rstrip('/')}/{exchange.upper()}.csv"


def download(exchange: str) -> bytes:
    """Fetch one exchange's file (public, no auth). Raises BrokerUnavailable."""
    url = contract_url(exchange)
    timeout = (settings.ALICEBLUE_CONNECT_TIMEOUT, max(settings.ALICEBLUE_READ_TIMEOUT, 30.0))
    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        raise BrokerUnavailable(
            f"contract master {exchange}: {exc.__class__.__name__}", op="contract_master"
        ) from None
    if response.status_code != 200:
        raise BrokerUnavailable(
            f"contract master {exchange}: HTTP {response.status_code}",
            op="contract_master",
            excerpt=excerpt(response.content),
            status_code=response.status_code,
        )
    return response.content


def store(rows: Iterable[ContractRow], *, exchange: str, day: date) -> tuple[int, int]:
    """Upsert one exchange's rows and drop that exchange's rows the file no longer has.

    One transaction per exchange (no network inside). Returns (upserted, removed).
    """
    instruments = [
        Instrument(
            exchange=r.exchange,
            token=r.token,
            trading_symbol=r.trading_symbol,
            symbol=r.symbol,
            name=r.name,
            segment=r.segment,
            instrument_type=r.instrument_type,
            option_type=r.option_type,
            strike=r.strike,
            expiry=r.expiry,
            lot_size=r.lot_size,
            tick_size=r.tick_size,
            freeze_quantity=r.freeze_quantity,
            board_lot_quantity=r.board_lot_quantity,
            refreshed_on=day,
        )
        for r in rows
        if r.exchange == exchange
    ]
    if not instruments:
        raise ContractFileError(f"{exchange}: no instruments in the file; keeping the old ones")
    with transaction.atomic():
        Instrument.objects.bulk_create(
            instruments,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["exchange", "token"],
            update_fields=_UPDATE_FIELDS,
        )
        removed, _ = Instrument.objects.filter(exchange=exchange).exclude(refreshed_on=day).delete()
    from trading.brokers.instruments import forget_lot_table

    forget_lot_table()
    return len(instruments), removed


def is_fresh(exchange: str, day: date) -> bool:
    return Instrument.objects.filter(exchange=exchange, refreshed_on=day).exists()


@dataclass(frozen=True)
class RefreshResult:
    exchange: str
    status: str  # "refreshed" | "fresh" | "failed"
    upserted: int = 0
    removed: int = 0
    error: str = ""


def refresh(
    exchanges: Iterable[str],
    *,
    day: date,
    force: bool = False,
    fetch: Callable[[str], bytes] = download,
) -> list[RefreshResult]:
    """Refresh each exchange unless already refreshed on `day` (IST trading day)."""
    results = []
    for exchange in exchanges:
        exchange = exchange.upper()
        if not force and is_fresh(exchange, day):
            results.append(RefreshResult(exchange, "fresh"))
            continue
        try:
            content = fetch(exchange)
            upserted, removed = store(parse_csv(exchange, content), exchange=exchange, day=day)
        except (BrokerUnavailable, ContractFileError) as exc:
            logger.warning("contract master refresh failed", extra={"ctx": {"error": str(exc)}})
            results.append(RefreshResult(exchange, "failed", error=str(exc)))
            continue
        results.append(RefreshResult(exchange, "refreshed", upserted, removed))
    return results
