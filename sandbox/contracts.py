"""The sandbox's contract master: instruments, and the CSV/JSON files AliceBlue publishes.

Layouts are the newest real ones (CONTRACTS.md §1): NSE.csv 11 columns, BSE.csv 10, NFO.csv 13,
MCX.csv the 2024 layout (`Lot Size` 1, units in `Board Lot Qty`, plus `freeze_qty`),
INDICES.csv `exch,symbol,token`. Equity and index tokens are the real ones (CONTRACTS.md §2,
§3.1). Derivatives are generated relative to the trading day so expiries are never in the
past; their tokens are stable hashes of the contract (real F&O tokens are recycled anyway).

Freeze limits: the real NSE/NFO files carry no freeze column, so neither do ours. MCX.csv has
its real `freeze_qty` column. For NFO the sandbox serves a sandbox-only file,
`/restpy/static/contract_master/sandbox/FREEZE.csv` (`Exch,Symbol,Freeze Qty`, units), and
`FREEZE_LIMITS` below; nothing like it exists on AliceBlue's CDN.
"""

from __future__ import annotations

import calendar as _calendar
import csv
import io
import json
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

EXCHANGES = ("NSE", "BSE", "NFO", "MCX")

# NSE index derivatives (CONTRACTS.md §3.2 for 2026 contracts, §3.3 from 1 Sep 2025), units.
LOT_SIZES = {"NIFTY": 65, "BANKNIFTY": 30}
FREEZE_LIMITS = {("NFO", "NIFTY"): 1800, ("NFO", "BANKNIFTY"): 900}

NSE_HEADER = [
    "Exch", "Exchange Segment", "Group Name", "Symbol", "Token", "Instrument Type",
    "Instrument Name", "Formatted Ins Name", "Trading Symbol", "Lot Size", "Tick Size",
]  # fmt: skip
BSE_HEADER = [
    "Exch", "Exchange Segment", "Symbol", "Token", "Instrument Type", "Instrument Name",
    "Formatted Ins Name", "Lot Size", "Tick Size", "Trading Symbol",
]  # fmt: skip
NFO_HEADER = [
    "Exch", "Exchange Segment", "Symbol", "Token", "Instrument Type", "Option Type",
    "Strike Price", "Instrument Name", "Formatted Ins Name", "Trading Symbol", "Expiry Date",
    "Lot Size", "Tick Size",
]  # fmt: skip
MCX_HEADER = [
    "Exch", "Exchange Segment", "Symbol", "Token", "Instrument Type", "Option Type",
    "Strike Price", "Instrument Name", "Trading Symbol", "Formatted Ins Name", "Expiry Date",
    "Lot Size", "Tick Size", "freeze_qty", "Board Lot Qty",
]  # fmt: skip
INDICES_HEADER = ["exch", "symbol", "token"]
FREEZE_HEADER = ["Exch", "Symbol", "Freeze Qty"]

# (symbol, token, company name, base price) — tokens from CONTRACTS.md §2.
NSE_EQUITIES: tuple[tuple[str, int, str, str], ...] = (
    ("ADANIENT", 25, "ADANI ENTERPRISES LIMITED", "2410"),
    ("ADANIPORTS", 15083, "ADANI PORTS AND SPECIAL ECONOMIC ZONE LTD", "1452"),
    ("APOLLOHOSP", 157, "APOLLO HOSPITALS ENTERPRISE LTD", "7480"),
    ("ASIANPAINT", 236, "ASIAN PAINTS LIMITED", "2395"),
    ("AXISBANK", 5900, "AXIS BANK LIMITED", "1160"),
    ("BAJAJ-AUTO", 16669, "BAJAJ AUTO LIMITED", "8820"),
    ("BAJAJFINSV", 16675, "BAJAJ FINSERV LTD.", "2010"),
    ("BAJFINANCE", 317, "BAJAJ FINANCE LIMITED", "1004"),
    ("BANKBARODA", 4668, "BANK OF BARODA", "262"),
    ("BEL", 383, "BHARAT ELECTRONICS LIMITED", "405"),
    ("BHARTIARTL", 10604, "BHARTI AIRTEL LIMITED", "2050"),
    ("BPCL", 526, "BHARAT PETROLEUM CORP  LT", "342"),
    ("BRITANNIA", 547, "BRITANNIA INDUSTRIES LTD", "5830"),
    ("CIPLA", 694, "CIPLA LIMITED", "1510"),
    ("COALINDIA", 20374, "COAL INDIA LTD", "386"),
    ("ETERNAL", 5097, "ETERNAL LIMITED", "302"),
    ("GRASIM", 1232, "GRASIM INDUSTRIES LTD", "2710"),
    ("HAL", 2303, "HINDUSTAN AERONAUTICS LTD", "4620"),
    ("HCLTECH", 7229, "HCL TECHNOLOGIES LTD", "1540"),
    ("HDFCBANK", 1333, "HDFC BANK LTD", "998"),
    ("HDFCLIFE", 467, "HDFC LIFE INS CO LTD", "762"),
    ("HEROMOTOCO", 1348, "HERO MOTOCORP LIMITED", "5410"),
    ("HINDALCO", 1363, "HINDALCO  INDUSTRIES  LTD", "781"),
    ("HINDUNILVR", 1394, "HINDUSTAN UNILEVER LTD.", "2455"),
    ("ICICIBANK", 4963, "ICICI BANK LTD.", "1398"),
    ("INDUSINDBK", 5258, "INDUSIND BANK LIMITED", "752"),
    ("INFY", 1594, "INFOSYS LIMITED", "1500"),
    ("IOC", 1624, "INDIAN OIL CORP LTD", "151.5"),
    ("IRCTC", 13611, "INDIAN RAIL TOUR CORP LTD", "702"),
    ("ITC", 1660, "ITC LTD", "410"),
    ("JSWSTEEL", 11723, "JSW STEEL LIMITED", "1152"),
    ("KOTAKBANK", 1922, "KOTAK MAHINDRA BANK LTD", "2105"),
    ("LT", 11483, "LARSEN & TOUBRO LTD.", "3905"),
    ("M&M", 2031, "MAHINDRA & MAHINDRA LTD", "3610"),
    ("MARUTI", 10999, "MARUTI SUZUKI INDIA LTD.", "16050"),
    ("NTPC", 11630, "NTPC LTD", "331"),
    ("ONGC", 2475, "OIL AND NATURAL GAS CORP.", "244.5"),
    ("POWERGRID", 14977, "POWER GRID CORP. LTD.", "289"),
    ("RELIANCE", 2885, "RELIANCE INDUSTRIES LTD", "1502"),
    ("SBILIFE", 21808, "SBI LIFE INSURANCE CO LTD", "2004"),
    ("SBIN", 3045, "STATE BANK OF INDIA", "951"),
    ("SHRIRAMFIN", 4306, "SHRIRAM FINANCE LIMITED", "802"),
    ("SUNPHARMA", 3351, "SUN PHARMACEUTICAL IND L", "1705"),
    ("TATACONSUM", 3432, "TATA CONSUMER PRODUCT LTD", "1151"),
    ("TATAPOWER", 3426, "TATA POWER CO LTD", "391"),
    ("TATASTEEL", 3499, "TATA STEEL LIMITED", "171.2"),
    ("TCS", 11536, "TATA CONSULTANCY SERV LT", "3105"),
    ("TECHM", 13538, "TECH MAHINDRA LIMITED", "1502"),
    ("TITAN", 3506, "TITAN COMPANY LIMITED", "3810"),
    ("TRENT", 1964, "TRENT LTD", "4305"),
    ("ULTRACEMCO", 11532, "ULTRATECH CEMENT LIMITED", "12010"),
    ("WIPRO", 3787, "WIPRO LTD", "246.5"),
)
# BSE scrip codes seen in the real BSE.csv (CONTRACTS.md §1.3).
BSE_CODES = {
    "RELIANCE": 500325, "SBIN": 500112, "INFY": 500209, "HDFCBANK": 500180,
    "KOTAKBANK": 500247, "TITAN": 500114, "ONGC": 500312, "JSWSTEEL": 500228,
    "GRASIM": 500300, "BAJFINANCE": 500034,
}  # fmt: skip
# (exchange, symbol, token, base level) — INDICES.csv, CONTRACTS.md §3.1.
INDICES: tuple[tuple[str, str, int, str], ...] = (
    ("NSE", "NIFTY 50", 26000, "25900"),
    ("NSE", "NIFTY IT", 26008, "36500"),
    ("NSE", "NIFTY BANK", 26009, "58100"),
    ("NSE", "INDIA VIX", 26017, "12.5"),
    ("NSE", "NIFTY FIN SERVICE", 26037, "27400"),
    ("BSE", "SENSEX", 1, "84600"),
    ("BSE", "BANKEX", 12, "65300"),
    ("MCX", "MCXCOMDEX", 500202, "21500"),
)
INDEX_UNDERLYINGS: dict[str, tuple[str, int]] = {
    "NIFTY": ("NIFTY 50", 50),
    "BANKNIFTY": ("NIFTY BANK", 100),
}
STRIKES_EACH_SIDE = 10

# MCX 2024 layout (CONTRACTS.md §4.2): symbol, tick, freeze_qty (lots), board lot, base price,
# expiry rule (day of month or "last", months it expires in).
ALL_MONTHS = tuple(range(1, 13))
MCX_FUTURES: tuple[tuple[str, str, int, int, str, int | str, tuple[int, ...]], ...] = (
    ("CRUDEOIL", "1.0", 100, 100, "5640", 19, ALL_MONTHS),
    ("CRUDEOILM", "1.0", 1000, 10, "5640", 19, ALL_MONTHS),
    ("NATURALGAS", "0.1", 48, 1250, "352.4", 26, ALL_MONTHS),
    ("GOLD", "1.0", 10, 1, "128450", 5, (2, 4, 6, 8, 10, 12)),
    ("GOLDM", "1.0", 100, 100, "128300", 3, ALL_MONTHS),
    ("SILVER", "1.0", 20, 30, "162300", 5, (3, 5, 7, 9, 12)),
    ("SILVERM", "1.0", 120, 5, "162150", "last", (2, 4, 6, 8, 11)),
    ("COPPER", "0.05", 28, 2500, "1004.5", "last", ALL_MONTHS),
    ("ZINC", "0.05", 20, 5, "296.15", "last", ALL_MONTHS),
)
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass(frozen=True)
class Instrument:
    exchange: str
    segment: str
    token: str
    symbol: str
    trading_symbol: str
    name: str
    formatted_name: str
    instrument_type: str
    lot_size: int
    tick_size: Decimal
    base_price: Decimal
    group: str = ""
    option_type: str = ""
    strike: Decimal | None = None
    expiry: date | None = None
    freeze_qty: int | None = None
    board_lot: int = 1
    is_index: bool = False

    @property
    def is_derivative(self) -> bool:
        return self.exchange in ("NFO", "BFO", "MCX", "CDS", "BCD")

    @property
    def is_option(self) -> bool:
        return self.option_type in ("CE", "PE")


def tick_for(price: Decimal) -> Decimal:
    """NSE's price-band tick sizes from 2025 (CONTRACTS.md §2.1)."""
    if price < 250:
        return Decimal("0.01")
    if price < 1000:
        return Decimal("0.05")
    if price < 5000:
        return Decimal("0.10")
    if price < 10000:
        return Decimal("0.50")
    return Decimal("1.00")


def round_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    steps = (price / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return max(tick, steps * tick).quantize(tick)


def _fmt_num(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _fmt_tick(value: Decimal) -> str:
    """Tick sizes as the real files print them: 0.05, 0.1, 1.0."""
    text = format(value.normalize(), "f")
    return text if "." in text else text + ".0"


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _adjust_back(day: date, is_trading_day: Callable[[date], bool]) -> date:
    while not is_trading_day(day):
        day -= timedelta(days=1)
    return day


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year, month, _calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _months_from(today: date, count: int) -> Iterable[tuple[int, int]]:
    year, month = today.year, today.month
    for _ in range(count):
        yield year, month
        month += 1
        if month > 12:
            year, month = year + 1, 1


def nse_monthly_expiries(today: date, count: int, is_trading_day: Callable[[date], bool]):
    """Last Tuesday of each month (holiday → previous trading day), from today on."""
    found: list[date] = []
    for year, month in _months_from(today, count + 2):
        expiry = _adjust_back(_last_weekday(year, month, 1), is_trading_day)
        if expiry >= today:
            found.append(expiry)
    return found[:count]


def nse_weekly_expiries(today: date, count: int, is_trading_day: Callable[[date], bool]):
    """NIFTY weeklies: every Tuesday (holiday → previous trading day), from today on."""
    found: list[date] = []
    tuesday = today - timedelta(days=(today.weekday() - 1) % 7)
    while len(found) < count:
        expiry = _adjust_back(tuesday, is_trading_day)
        if expiry >= today:
            found.append(expiry)
        tuesday += timedelta(days=7)
    return found


def _mcx_expiries(today, rule, months, count, is_trading_day):
    found: list[date] = []
    for year, month in _months_from(today, 16):
        if month not in months:
            continue
        last_day = _calendar.monthrange(year, month)[1]
        day = date(year, month, last_day if rule == "last" else min(int(rule), last_day))
        expiry = _adjust_back(day, is_trading_day)
        if expiry >= today:
            found.append(expiry)
        if len(found) == count:
            break
    return found


class _TokenAllocator:
    """Stable tokens for generated contracts: a hash of the contract, probed on collision."""

    def __init__(self, base: int, span: int, taken: Iterable[int] = ()) -> None:
        self.base, self.span = base, span
        self.used: set[int] = set(taken)

    def token(self, identity: str) -> str:
        offset = zlib.crc32(identity.encode()) % self.span
        while self.base + offset in self.used:
            offset = (offset + 1) % self.span
        self.used.add(self.base + offset)
        return str(self.base + offset)


def _dmy(d: date) -> str:
    return f"{d.day:02d}{MONTHS[d.month - 1]}{d.year % 100:02d}"


def build_universe(
    today: date, is_trading_day: Callable[[date], bool] | None = None
) -> list[Instrument]:
    """Every instrument the sandbox lists on `today` (deterministic for a given day)."""
    trading_day = is_trading_day or (lambda d: d.weekday() < 5)
    out: list[Instrument] = []
    nse_prices: dict[str, Decimal] = {}
    for symbol, token, name, price_text in NSE_EQUITIES:
        price = Decimal(price_text)
        nse_prices[symbol] = price
        tick = tick_for(price)
        tsym = f"{symbol}-EQ"
        out.append(
            Instrument(
                exchange="NSE", segment="nse_cm", token=str(token), symbol=symbol,
                trading_symbol=tsym, name=name, formatted_name=tsym, instrument_type="0",
                lot_size=1, tick_size=tick, base_price=round_to_tick(price, tick), group="EQ",
            )
        )  # fmt: skip
    names = {s: n for s, _, n, _ in NSE_EQUITIES}
    for symbol, code in BSE_CODES.items():
        tick = Decimal("0.05")
        price = round_to_tick(nse_prices[symbol] + Decimal("0.10"), tick)
        out.append(
            Instrument(
                exchange="BSE", segment="bse_cm", token=str(code), symbol=symbol,
                trading_symbol=symbol, name=names[symbol].rstrip(".") + ".", formatted_name=symbol,
                instrument_type="E", lot_size=1, tick_size=tick, base_price=price,
            )
        )  # fmt: skip
    index_levels: dict[str, Decimal] = {}
    for exch, symbol, token, level_text in INDICES:
        index_levels[symbol] = Decimal(level_text)
        out.append(
            Instrument(
                exchange=exch, segment=f"{exch.lower()}_idx", token=str(token), symbol=symbol,
                trading_symbol=symbol, name=symbol, formatted_name=symbol, instrument_type="INDEX",
                lot_size=1, tick_size=Decimal("0.05"), base_price=index_levels[symbol],
                is_index=True,
            )
        )  # fmt: skip

    nfo_tokens = _TokenAllocator(35000, 200000)
    tick = Decimal("0.05")
    for underlying in ("NIFTY", "BANKNIFTY"):
        index_name, step = INDEX_UNDERLYINGS[underlying]
        level = index_levels[index_name]
        lot = LOT_SIZES[underlying]
        freeze = FREEZE_LIMITS[("NFO", underlying)]
        monthlies = nse_monthly_expiries(today, 3, trading_day)
        for expiry in monthlies:
            days = (expiry - today).days
            price = round_to_tick(level * (1 + Decimal("0.00018") * days), tick)
            identity = f"NFO|{underlying}|FUT|{expiry.isoformat()}"
            out.append(
                Instrument(
                    exchange="NFO", segment="nse_fo", token=nfo_tokens.token(identity),
                    symbol=underlying, trading_symbol=f"{underlying}{_dmy(expiry)}F",
                    name=underlying,
                    formatted_name=f"{underlying} {MONTHS[expiry.month - 1]} FUT",
                    instrument_type="FUTIDX", lot_size=lot, tick_size=tick, base_price=price,
                    option_type="XX", strike=Decimal(-1), expiry=expiry, freeze_qty=freeze,
                )
            )  # fmt: skip
        option_expiries = sorted(
            set(monthlies)
            | (set(nse_weekly_expiries(today, 4, trading_day)) if underlying == "NIFTY" else set())
        )
        atm = int((level / step).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * step
        for expiry in option_expiries:
            days = max((expiry - today).days, 0) + 1
            for i in range(-STRIKES_EACH_SIDE, STRIKES_EACH_SIDE + 1):
                strike = Decimal(atm + i * step)
                for opt in ("CE", "PE"):
                    intrinsic = max(level - strike, Decimal(0))
                    if opt == "PE":
                        intrinsic = max(strike - level, Decimal(0))
                    time_value = (
                        level * Decimal("0.004") * Decimal(days).sqrt() / (1 + Decimal(abs(i)) / 4)
                    )
                    price = round_to_tick(intrinsic + time_value + Decimal("0.05"), tick)
                    when = f"{_ordinal(expiry.day)} {MONTHS[expiry.month - 1]}"
                    if expiry.year != today.year:
                        when += f"{expiry.year % 100:02d}"
                    identity = f"NFO|{underlying}|{opt}|{strike}|{expiry.isoformat()}"
                    out.append(
                        Instrument(
                            exchange="NFO", segment="nse_fo", token=nfo_tokens.token(identity),
                            symbol=underlying,
                            trading_symbol=f"{underlying}{_dmy(expiry)}{opt[0]}{strike}",
                            name=underlying,
                            formatted_name=f"{underlying} {when} {strike} {opt}",
                            instrument_type="OPTIDX", lot_size=lot, tick_size=tick,
                            base_price=price, option_type=opt, strike=strike, expiry=expiry,
                            freeze_qty=freeze,
                        )
                    )  # fmt: skip

    mcx_tokens = _TokenAllocator(430000, 100000)
    for symbol, tick_text, freeze, board_lot, price_text, rule, months in MCX_FUTURES:
        tick = Decimal(tick_text)
        for expiry in _mcx_expiries(today, rule, months, 2, trading_day):
            identity = f"MCX|{symbol}|FUT|{expiry.isoformat()}"
            out.append(
                Instrument(
                    exchange="MCX", segment="mcx_fo", token=mcx_tokens.token(identity),
                    symbol=symbol, trading_symbol=f"{symbol}{_dmy(expiry)}", name=symbol,
                    formatted_name=f"{symbol} {MONTHS[expiry.month - 1]} FUT",
                    instrument_type="FUTCOM", lot_size=1, tick_size=tick,
                    base_price=round_to_tick(Decimal(price_text), tick), strike=Decimal(0),
                    expiry=expiry, freeze_qty=freeze, board_lot=board_lot,
                )
            )  # fmt: skip
    return out


# --- Files ---------------------------------------------------------------------------------------
def _row(inst: Instrument) -> list[str]:
    tick = _fmt_tick(inst.tick_size)
    if inst.exchange == "NSE":
        return [
            "NSE", inst.segment, inst.group, inst.symbol, inst.token, inst.instrument_type,
            inst.name, inst.formatted_name, inst.trading_symbol, str(inst.lot_size), tick,
        ]  # fmt: skip
    if inst.exchange == "BSE":
        return [
            "BSE", inst.segment, inst.symbol, inst.token, inst.instrument_type, inst.name,
            inst.formatted_name, str(inst.lot_size), tick, inst.trading_symbol,
        ]  # fmt: skip
    expiry = inst.expiry.isoformat() if inst.expiry else ""
    strike = _fmt_num(inst.strike) if inst.strike is not None else ""
    if inst.exchange == "NFO":
        return [
            "NFO", inst.segment, inst.symbol, inst.token, inst.instrument_type, inst.option_type,
            strike, inst.name, inst.formatted_name, inst.trading_symbol, expiry,
            str(inst.lot_size), tick,
        ]  # fmt: skip
    if inst.exchange == "MCX":
        return [
            "MCX", inst.segment, inst.symbol, inst.token, inst.instrument_type, inst.option_type,
            strike, inst.name, inst.trading_symbol, inst.formatted_name, expiry,
            str(inst.lot_size), tick, str(inst.freeze_qty or ""), str(inst.board_lot),
        ]  # fmt: skip
    raise ValueError(inst.exchange)


HEADERS = {"NSE": NSE_HEADER, "BSE": BSE_HEADER, "NFO": NFO_HEADER, "MCX": MCX_HEADER}


def render_csv(exchange: str, instruments: Iterable[Instrument]) -> str:
    """The `<EXCH>.csv` file: one header row, comma-separated, no quoting (as AliceBlue's)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    if exchange == "INDICES":
        writer.writerow(INDICES_HEADER)
        for inst in instruments:
            if inst.is_index:
                writer.writerow([inst.exchange, inst.symbol, inst.token])
        return buf.getvalue()
    if exchange == "FREEZE":
        writer.writerow(FREEZE_HEADER)
        for (exch, symbol), qty in sorted(FREEZE_LIMITS.items()):
            writer.writerow([exch, symbol, qty])
        return buf.getvalue()
    writer.writerow(HEADERS[exchange])
    for inst in instruments:
        if inst.exchange == exchange and not inst.is_index:
            writer.writerow(_row(inst))
    return buf.getvalue()


def render_json_v2(exchange: str, instruments: Iterable[Instrument]) -> str:
    """`…/contract_master/V2/<EXCH>` (no extension): JSON object keyed by exchange."""
    rows: list[dict[str, object]] = []
    for inst in instruments:
        if inst.is_index:
            if exchange == "INDICES":
                rows.append({"exch": inst.exchange, "symbol": inst.symbol, "token": inst.token})
            continue
        if inst.exchange != exchange:
            continue
        expiry_ms = (
            int(datetime(*inst.expiry.timetuple()[:3], tzinfo=UTC).timestamp() * 1000)
            if inst.expiry
            else None
        )
        rows.append(
            {
                "exch": inst.exchange,
                "exchange_segment": inst.segment,
                "symbol": inst.symbol,
                "trading_symbol": inst.trading_symbol,
                "formatted_ins_name": inst.formatted_name,
                "token": inst.token,
                "instrument_type": inst.instrument_type,
                "option_type": inst.option_type,
                "strike_price": _fmt_num(inst.strike) if inst.strike is not None else "",
                "expiry_date": expiry_ms,
                "lot_size": str(inst.lot_size),
                "tick_size": _fmt_tick(inst.tick_size),
                "group_name": inst.group,
                "board_lot_qty": str(inst.board_lot),
            }
        )
    return json.dumps({exchange: rows})
