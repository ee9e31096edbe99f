"""Contract-master files: real headers, parse by header, URL variants, tokens, expiries."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
import requests

from sandbox import contracts
from tests.sandbox.helpers import TIMEOUT


def fetch(sandbox, path: str) -> requests.Response:
    return requests.get(f"{sandbox.contract_url}/{path}", timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("exchange", "header"),
    [
        ("NSE", contracts.NSE_HEADER),
        ("BSE", contracts.BSE_HEADER),
        ("NFO", contracts.NFO_HEADER),
        ("MCX", contracts.MCX_HEADER),
        ("INDICES", contracts.INDICES_HEADER),
    ],
)
def test_csv_has_the_real_header_and_parses_by_name(sandbox, exchange, header):
    answer = fetch(sandbox, f"{exchange}.csv")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert list(rows[0]) == header
    assert rows
    if exchange != "INDICES":
        assert all(r["Token"].isdigit() and r["Exch"] == exchange for r in rows)


def test_real_tokens_lot_sizes_and_future_expiries(sandbox):
    nse = {r["Symbol"]: r for r in csv.DictReader(io.StringIO(fetch(sandbox, "NSE.csv").text))}
    assert len(nse) >= 30
    assert (nse["INFY"]["Token"], nse["INFY"]["Trading Symbol"]) == ("1594", "INFY-EQ")
    assert nse["RELIANCE"]["Token"] == "2885" and nse["SBIN"]["Token"] == "3045"
    bse = {r["Symbol"]: r for r in csv.DictReader(io.StringIO(fetch(sandbox, "BSE.csv").text))}
    assert bse["RELIANCE"]["Token"] == "500325" and bse["RELIANCE"]["Trading Symbol"] == "RELIANCE"
    nfo = list(csv.DictReader(io.StringIO(fetch(sandbox, "NFO.csv").text)))
    today = sandbox.now().date()
    for row in nfo:
        assert date.fromisoformat(row["Expiry Date"]) >= today
        assert row["Tick Size"] == "0.05"
        assert row["Lot Size"] == {"NIFTY": "65", "BANKNIFTY": "30"}[row["Symbol"]]
    futures = [r for r in nfo if r["Instrument Type"] == "FUTIDX"]
    assert {r["Option Type"] for r in futures} == {"XX"} and {
        r["Strike Price"] for r in futures
    } == {"-1"}
    assert all(r["Trading Symbol"].endswith("F") for r in futures)
    options = [r for r in nfo if r["Instrument Type"] == "OPTIDX"]
    assert {r["Option Type"] for r in options} == {"CE", "PE"}
    assert len({r["Token"] for r in nfo}) == len(nfo)
    mcx = list(csv.DictReader(io.StringIO(fetch(sandbox, "MCX.csv").text)))
    assert {r["Lot Size"] for r in mcx} == {"1"}
    crude = next(r for r in mcx if r["Symbol"] == "CRUDEOIL")
    assert (crude["Board Lot Qty"], crude["freeze_qty"]) == ("100", "100")


def test_url_variants_v2_csv_json_and_tradehub_case_forms(sandbox):
    v1 = fetch(sandbox, "NSE.csv").text
    assert fetch(sandbox, "V2/NSE.csv").text == v1
    for variant in ("nse.csv", "nse.CSV", "NSE.CSV"):
        assert fetch(sandbox, variant).text == v1
    assert fetch(sandbox, "nse").status_code == 404  # TradeHub then tries nse.csv
    data = json.loads(fetch(sandbox, "V2/NFO").text)
    (row, *_) = data["NFO"]
    assert {
        "exch",
        "exchange_segment",
        "symbol",
        "trading_symbol",
        "formatted_ins_name",
        "token",
        "instrument_type",
        "option_type",
        "strike_price",
        "expiry_date",
        "lot_size",
        "tick_size",
        "group_name",
        "board_lot_qty",
    } == set(row)
    assert isinstance(row["expiry_date"], int)  # epoch milliseconds
    assert fetch(sandbox, "NYSE.csv").status_code == 404


def test_sandbox_only_freeze_file(sandbox):
    rows = list(csv.DictReader(io.StringIO(fetch(sandbox, "sandbox/FREEZE.csv").text)))
    assert {(r["Exch"], r["Symbol"]): r["Freeze Qty"] for r in rows} == {
        ("NFO", "NIFTY"): "1800",
        ("NFO", "BANKNIFTY"): "900",
    }


def test_every_instrument_has_a_quote(sandbox, sandbox_account):
    from tests.sandbox.helpers import g2, g2_login

    h2 = g2_login(sandbox, sandbox_account)
    for exchange in ("NSE", "BSE", "NFO", "MCX"):
        for inst in sandbox.instruments(exchange)[:3]:
            quote = g2(
                sandbox,
                "POST",
                "ScripDetails/getScripQuoteDetails",
                h2,
                {"exch": exchange, "symbol": inst["token"]},
            ).json()
            assert quote["stat"] == "Ok" and float(quote["LTP"]) > 0
    index = g2(
        sandbox, "POST", "ScripDetails/getScripQuoteDetails", h2, {"exch": "NSE", "symbol": "26000"}
    ).json()
    assert index["stat"] == "Ok"


def test_expiries_follow_the_calendar(monkeypatch):
    tuesday_holiday = {date(2026, 3, 31)}
    weeklies = contracts.nse_weekly_expiries(
        date(2026, 3, 25), 2, lambda d: d.weekday() < 5 and d not in tuesday_holiday
    )
    assert weeklies == [date(2026, 3, 30), date(2026, 4, 7)]
    universe = contracts.build_universe(date(2026, 11, 27))
    again = contracts.build_universe(date(2026, 11, 27))
    assert [(i.exchange, i.token) for i in universe] == [(i.exchange, i.token) for i in again]
