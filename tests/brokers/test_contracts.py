# ruff: noqa: E501  (real contract-master lines are long)
"""The contract master import: real header variants from CONTRACTS.md (NSE, BSE, NFO, BFO,
three MCX generations), bulk upsert into Instrument, daily freshness, the selectors, and the
`refresh_instruments` command downloading over a real socket."""

from __future__ import annotations

import http.server
import threading
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from trading.brokers import instruments
from trading.brokers.aliceblue import contracts
from trading.models import Instrument

NSE = """Exch,Exchange Segment,Group Name,Symbol,Token,Instrument Type,Instrument Name,Formatted Ins Name,Trading Symbol,Lot Size,Tick Size
NSE,nse_cm,EQ,INFY,1594,0,INFOSYS LIMITED,INFOSYS LIMITED,INFY-EQ,1,0.05
NSE,nse_cm,EQ,HDFCBANK,1333,0,HDFC BANK LTD,HDFCBANK-EQ,HDFCBANK-EQ,1,0.1
NSE,nse_cm,SM,GRAPHISAD,20454,0,GRAPHISADS LIMITED,GRAPHISAD-SM,GRAPHISAD-SM,1200,0.05
"""
NFO = """Exch,Exchange Segment,Symbol,Token,Instrument Type,Option Type,Strike Price,Instrument Name,Formatted Ins Name,Trading Symbol,Expiry Date,Lot Size,Tick Size
NFO,nse_fo,NIFTY,35000,FUTIDX,XX,-1,NIFTY,NIFTY SEP FUT,NIFTY26SEP24F,2024-09-26,25,0.05
NFO,nse_fo,NIFTY,35488,OPTIDX,CE,21050,NIFTY,NIFTY 11th JUL 21050 CE,NIFTY11JUL24C21050,2024-07-11,25,0.05
NFO,nse_fo,ABCAPITAL,35394,OPTSTK,CE,277.5,ADITYA BIRLA CAPITAL LTD.,ABCAPITAL JUL 277.5 CE,ABCAPITAL31JUL25C277.5,2025-07-31,3100,0.05
"""
BFO = """Exch,Exchange Segment,Symbol,Token,Instrument Type,Option Type,Strike Price,Instrument Name,Trading Symbol,Formatted Ins Name,Expiry Date,Lot Size,Tick Size,pdc
BFO,bse_fo,ABB,862943,SO,CE,7800,ABB INDIA LIMITED,ABB24AUG7800CE,ABB 08AUG24 7800 CE,2024-08-08,125,0.05,
BFO,bse_fo,SBIN,2252898,SF,,0,STATE BANK OF INDIA,SBIN24JULFUT,SBIN 11JUL24 FUT,2024-07-11,750,0.05,
"""
BSE = """Exch,Exchange Segment,Symbol,Token,Instrument Type,Instrument Name,Formatted Ins Name,Lot Size,Tick Size,Trading Symbol
BSE,bse_cm,RELIANCE,500325,E,RELIANCE INDUSTRIES LTD.,RELIANCE,1,0.05,RELIANCE
"""
MCX_2022 = """Exch,Exchange Segment,Symbol,Token,Instrument Type,Option Type,Strike Price,Instrument Name,Trading Symbol,Formatted Ins Name,Expiry Date,Lot Size,Tick Size
MCX,mcx_fo,SILVER,244731,FUTCOM,,0,SILVER23JULFUT,SILVER23JULFUT,SILVER 05JUL23 FUT,2023-07-05,30,1.0
"""
MCX_2023 = """Exch,Exchange Segment,Symbol,Token,Instrument Type,Option Type,Strike Price,Instrument Name,Trading Symbol,Formatted Ins Name,Expiry Date,Lot Size,Tick Size,FreezeQty
MCX,mcx_fo,SILVER,244731,FUTCOM,,0,SILVER23JULFUT,SILVER23JULFUT,SILVER 05JUL23 FUT,2023-07-05,30,1.0,20
"""
MCX_2024 = """Exch,Exchange Segment,Symbol,Token,Instrument Type,Option Type,Strike Price,Instrument Name,Trading Symbol,Formatted Ins Name,Expiry Date,Lot Size,Tick Size,freeze_qty,Board Lot Qty
MCX,mcx_fo,CRUDEOIL,432293,FUTCOM,,0,CRUDEOIL,CRUDEOIL21OCT24,CRUDEOIL OCT FUT,2024-10-21,1,1.0,100,100
MCX,mcx_fo,SILVER,426467,FUTCOM,,0,SILVER,SILVER05DEC24,SILVER DEC FUT,2024-12-05,1,1.0,20,30
MCX,mcx_idx,MCXBULLDEX,1,INDEX,,0,MCXBULLDEX,MCXBULLDEX,MCXBULLDEX,,1,1.0,,
"""
DAY = date(2026, 3, 3)


def test_nse_rows_parse_by_header_name():
    rows = {r.token: r for r in contracts.parse_csv("NSE", NSE)}
    infy = rows["1594"]
    assert (infy.trading_symbol, infy.symbol, infy.lot_size) == ("INFY-EQ", "INFY", 1)
    assert infy.tick_size == Decimal("0.05") and infy.expiry is None and infy.option_type == ""
    assert rows["20454"].lot_size == 1200
    assert rows["1333"].tick_size == Decimal("0.1")


def test_nfo_futures_options_and_index_freeze_limits():
    rows = {r.token: r for r in contracts.parse_csv("NFO", NFO)}
    fut = rows["35000"]
    assert fut.option_type == "" and fut.strike is None and fut.expiry == date(2024, 9, 26)
    assert fut.freeze_quantity == contracts.INDEX_FREEZE_UNITS["NIFTY"]
    opt = rows["35488"]
    assert (opt.option_type, opt.strike, opt.lot_size) == ("CE", Decimal("21050"), 25)
    stock = rows["35394"]
    assert stock.strike == Decimal("277.5") and stock.freeze_quantity is None


def test_bfo_swapped_columns_and_bse_order():
    bfo = {r.token: r for r in contracts.parse_csv("BFO", BFO)}
    assert bfo["862943"].trading_symbol == "ABB24AUG7800CE"
    assert bfo["2252898"].trading_symbol == "SBIN24JULFUT" and bfo["2252898"].option_type == ""
    (rel,) = contracts.parse_csv("BSE", BSE)
    assert (rel.token, rel.trading_symbol, rel.segment) == ("500325", "RELIANCE", "bse_cm")


@pytest.mark.parametrize(
    ("content", "token", "units", "freeze"),
    [
        (MCX_2022, "244731", 30, None),
        (MCX_2023, "244731", 30, 600),
        (MCX_2024, "426467", 30, 600),
        (MCX_2024, "432293", 100, 10000),
    ],
)
def test_every_mcx_generation_stores_units_per_lot(content, token, units, freeze):
    rows = {r.token: r for r in contracts.parse_csv("MCX", content)}
    row = rows[token]
    assert row.lot_size == units and row.board_lot_quantity == units
    assert row.freeze_quantity == freeze


def test_mcx_index_rows_are_skipped():
    assert all(r.segment != "mcx_idx" for r in contracts.parse_csv("MCX", MCX_2024))


def test_a_file_without_the_needed_columns_is_refused():
    with pytest.raises(contracts.ContractFileError):
        contracts.parse_csv("NSE", "a,b,c\n1,2,3\n")


def test_store_upserts_removes_stale_rows_and_selectors_find_them(db):
    contracts.store(contracts.parse_csv("NFO", NFO), exchange="NFO", day=DAY)
    assert Instrument.objects.filter(exchange="NFO").count() == 3
    # next day: token 35488 recycled for another contract, 35394 gone
    recycled = NFO.splitlines()[0] + "\n" + "\n".join(NFO.splitlines()[1:2]) + "\n"
    recycled += "NFO,nse_fo,BANKNIFTY,35488,OPTIDX,PE,50000,BANKNIFTY,X,BANKNIFTY30JUL25P50000,2025-07-30,35,0.05\n"
    upserted, removed = contracts.store(
        contracts.parse_csv("NFO", recycled), exchange="NFO", day=date(2026, 3, 4)
    )
    assert (upserted, removed) == (2, 1)
    token = instruments.by_token("NFO", "35488")
    assert token is not None and token.trading_symbol == "BANKNIFTY30JUL25P50000"
    assert instruments.by_trading_symbol("NFO", "NIFTY26SEP24F").token == "35000"
    assert [i.token for i in instruments.for_underlying("NFO", "nifty")] == ["35000"]
    assert [i.token for i in instruments.search("bank")] == ["35488"]


def test_mcx_lot_table_comes_from_the_instruments(db):
    contracts.store(contracts.parse_csv("MCX", MCX_2024), exchange="MCX", day=DAY)
    table = instruments.mcx_lot_table()
    assert table.board_lot("MCX", "426467") == 30
    assert table.board_lot("MCX", trading_symbol="CRUDEOIL21OCT24") == 100


class _CsvHandler(http.server.BaseHTTPRequestHandler):
    files: dict[str, str] = {}
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        name = self.path.rsplit("/", 1)[-1]
        body = self.files.get(name)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def cdn(settings):
    _CsvHandler.files = {"NSE.csv": NSE, "NFO.csv": NFO, "MCX.csv": MCX_2024}
    _CsvHandler.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CsvHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.ALICEBLUE_CONTRACT_URL = (
        f"http://127.0.0.1:{server.server_address[1]}/restpy/static/contract_master"
    )
    yield _CsvHandler
    server.shutdown()
    server.server_close()


def test_refresh_command_downloads_once_per_day_unless_forced(db, cdn, capsys):
    call_command("refresh_instruments", "--exchange", "NSE", "--exchange", "NFO")
    assert Instrument.objects.filter(exchange="NSE").count() == 3
    assert cdn.hits == [
        "/restpy/static/contract_master/NSE.csv",
        "/restpy/static/contract_master/NFO.csv",
    ]
    call_command("refresh_instruments", "--exchange", "NSE")
    assert len(cdn.hits) == 2  # fresh today: skipped
    assert '"status": "fresh"' in capsys.readouterr().out
    call_command("refresh_instruments", "--exchange", "NSE", "--force")
    assert len(cdn.hits) == 3


def test_refresh_command_fails_loudly_and_keeps_old_rows(db, cdn):
    call_command("refresh_instruments", "--exchange", "NSE")
    cdn.files = {}
    with pytest.raises(CommandError, match="NSE"):
        call_command("refresh_instruments", "--exchange", "NSE", "--force")
    assert Instrument.objects.filter(exchange="NSE").count() == 3
