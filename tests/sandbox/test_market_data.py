"""NorenWS market data (login ack, touchline snapshot then deltas) and delivery holdings."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta

import aiohttp

from sandbox.clock import IST
from tests.sandbox.helpers import g2, g2_login, g3, g3_login, g3_session


def test_noren_login_subscribe_snapshot_and_delta(sandbox, sandbox_account):
    session = g3_session(sandbox, sandbox_account)
    token = hashlib.sha256(hashlib.sha256(session.encode()).hexdigest().encode()).hexdigest()
    uid = f"{sandbox_account.client_id}_API"

    async def run() -> list[dict]:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(sandbox.ws_url + "/NorenWS/") as ws,
        ):
            await ws.send_json(
                {"susertoken": token, "t": "c", "actid": uid, "uid": uid, "source": "API"}
            )
            frames = [await ws.receive_json(timeout=5)]
            await ws.send_json({"k": "NSE|1594#NSE|26000", "t": "t"})
            frames += [await ws.receive_json(timeout=5) for _ in range(2)]
            await asyncio.to_thread(sandbox.set_price, "NSE", "INFY-EQ", "1512.30")
            frames.append(await ws.receive_json(timeout=5))
            await ws.send_json({"k": "NSE|1594", "t": "u"})
            return frames

    ack, snap_a, snap_b, delta = asyncio.run(run())
    assert ack["t"] == "ck" and ack["s"] == "OK"
    assert {snap_a["tk"], snap_b["tk"]} == {"1594", "26000"} and snap_a["t"] == "tk"
    assert (delta["t"], delta["tk"], delta["lp"]) == ("tf", "1594", "1512.30")


def test_noren_refuses_a_wrong_token(sandbox, sandbox_account):
    async def run() -> dict:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(sandbox.ws_url + "/NorenWS/") as ws,
        ):
            await ws.send_json({"susertoken": "x", "t": "c", "uid": "X_API", "actid": "X_API"})
            return await ws.receive_json(timeout=5)

    assert asyncio.run(run())["s"] == "Not_Ok"


def test_delivery_buys_become_holdings_the_next_day(sandbox, sandbox_account):
    cid = sandbox_account.client_id
    sandbox.set_clock(datetime(2026, 7, 27, 11, 0, tzinfo=IST))
    sandbox.set_price("NSE", "SBIN-EQ", "950")
    sandbox.place_order(cid, "NSE", "SBIN-EQ", "BUY", 4, product="LONGTERM")
    sandbox.advance(timedelta(days=1).total_seconds())
    sandbox.daily_login(cid)
    (holding,) = g3(sandbox, "GET", "holdings/CNC", g3_login(sandbox, sandbox_account)).json()[
        "result"
    ]
    assert (holding["nseTradingSymbol"], holding["totalQuantity"], holding["sellableQty"]) == (
        "SBIN-EQ",
        4,
        4,
    )
    assert holding["averageTradedPrice"] == 950.0
    mtf = g3(sandbox, "GET", "holdings/MTF", g3_login(sandbox, sandbox_account)).json()
    assert mtf["message"] == "EC922"
    body = g2(
        sandbox, "GET", "positionAndHoldings/holdings", g2_login(sandbox, sandbox_account)
    ).json()
    assert body["stat"] == "Ok" and body["HoldingVal"][0]["Holdqty"] == "4"
    assert (
        g3(sandbox, "GET", "positions", g3_login(sandbox, sandbox_account)).json()["message"]
        == "EC920"
    )
