"""The order-notify websocket on both paths: token login, heartbeats, an `om` frame on every
state change, and the push faults (silent, dropped, not enabled)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp
import pytest
import requests

from tests.sandbox.helpers import TIMEOUT, g2_login, g3_login

PATHS = {
    "g3": ("/open-api/order-notify/ws/createWsToken", "/open-api/order-notify/websocket"),
    "g2": ("/order-notify/ws/createWsToken", "/order-notify/websocket"),
}


def order_token(sandbox, acct, generation: str) -> str:
    if generation == "g3":
        headers = g3_login(sandbox, acct)
    else:  # pya3 sends "Bearer Token <sessionID>"
        sid = g2_login(sandbox, acct)["Authorization"].split()[-1]
        headers = {"Authorization": f"Bearer Token {sid}"}
    answer = requests.get(sandbox.url + PATHS[generation][0], headers=headers, timeout=TIMEOUT)
    body = answer.json()
    assert body["status"] == "Ok" and body["message"] == "200"
    return str(body["result"][0]["orderToken"])


async def _collect(sandbox, acct, generation, actions, *, expect: int, login=True) -> list[Any]:
    token = order_token(sandbox, acct, generation)
    frames: list[Any] = []
    async with aiohttp.ClientSession() as session:
        url = sandbox.ws_url + PATHS[generation][1]
        async with session.ws_connect(url, headers={"Content-Type": "application/json"}) as ws:
            if login:
                await ws.send_json({"orderToken": token, "userId": acct.client_id})
                frames.append(await ws.receive_json(timeout=5))
                await ws.send_json({"heartbeat": "h", "userId": acct.client_id})
            for action in actions:
                await asyncio.to_thread(action)
            while len(frames) < expect:
                frames.append(await ws.receive_json(timeout=5))
    return frames


@pytest.mark.parametrize("generation", ["g3", "g2"])
def test_every_state_change_is_pushed_as_an_om_frame(sandbox, sandbox_account, generation):
    cid = sandbox_account.client_id
    sandbox.set_price("NSE", "INFY-EQ", "1500")
    state: dict[str, str] = {}

    def place() -> None:
        state["no"] = sandbox.place_order(
            cid, "NSE", "INFY-EQ", "BUY", 2, order_type="LIMIT", price="1490", tag="copy-7"
        )["order_no"]

    def modify() -> None:
        sandbox.modify_order(cid, state["no"], price="1495")

    def fill() -> None:
        sandbox.set_price("NSE", "INFY-EQ", "1494")

    frames = asyncio.run(
        _collect(sandbox, sandbox_account, generation, [place, modify, fill], expect=4)
    )
    assert frames[0] == {"status": "Ok"}
    new, replaced, filled = frames[1:]
    assert [f["t"] for f in frames[1:]] == ["om"] * 3
    assert (new["status"], new["reporttype"]) == ("OPEN", "New")
    assert (replaced["status"], replaced["reporttype"], replaced["prc"]) == (
        "OPEN",
        "Replaced",
        "1495.00",
    )
    assert (filled["status"], filled["reporttype"]) == ("COMPLETE", "Fill")
    assert filled["fillshares"] == "2" and filled["flqty"] == "2" and filled["flprc"] == "1494.00"
    assert filled["avgprc"] == "1494.00"
    for frame in frames[1:]:
        assert frame["norenordno"] == state["no"] and frame["remarks"] == "copy-7"
        assert (frame["prctyp"], frame["pcode"], frame["trantype"]) == ("LMT", "I", "B")
        assert all(isinstance(v, str) for v in frame.values())


def test_market_order_frames_carry_each_state_not_the_final_one(sandbox, sandbox_account):
    cid = sandbox_account.client_id
    frames = asyncio.run(
        _collect(
            sandbox,
            sandbox_account,
            "g3",
            [
                lambda: sandbox.place_order(cid, "NSE", "INFY-EQ", "SELL", 1, product="LONGTERM"),
            ],
            expect=3,
        )
    )
    assert [(f["status"], f["reporttype"], f["fillshares"]) for f in frames[1:]] == [
        ("OPEN", "New", "0"),
        ("COMPLETE", "Fill", "1"),
    ]
    assert frames[2]["pcode"] == "C" and frames[2]["prctyp"] == "MKT"


def test_cancel_and_reject_frames(sandbox, sandbox_account):
    cid = sandbox_account.client_id
    sandbox.update_account(cid, funds="100")
    state: dict[str, str] = {}

    def place() -> None:
        state["no"] = sandbox.place_order(
            cid, "NSE", "INFY-EQ", "BUY", 1, order_type="LIMIT", price="1000"
        )["order_no"]

    frames = asyncio.run(
        _collect(
            sandbox,
            sandbox_account,
            "g3",
            [
                place,
                lambda: sandbox.place_order(cid, "NSE", "INFY-EQ", "BUY", 100),
            ],
            expect=3,
        )
    )
    # the limit order (1000 x 20 % MIS = 200 > 100 available) is rejected too
    assert frames[1]["status"] == "REJECTED" and frames[1]["reporttype"] == "Rejected"
    assert frames[1]["rejreason"].startswith("RED:Margin Shortfall:INR 100.00 Available:INR 100.00")
    assert frames[2]["status"] == "REJECTED"
    sandbox.update_account(cid, funds="1000000")
    frames = asyncio.run(
        _collect(
            sandbox,
            sandbox_account,
            "g3",
            [
                place,
                lambda: sandbox.cancel_order(cid, state["no"]),
            ],
            expect=3,
        )
    )
    assert (frames[2]["status"], frames[2]["reporttype"], frames[2]["cancelqty"]) == (
        "CANCELED",
        "Canceled",
        "1",
    )
    sandbox.set_dialect(om_cancelled="CANCELLED", om_trigger_pending="TRIGGER PENDING")
    frames = asyncio.run(
        _collect(
            sandbox,
            sandbox_account,
            "g3",
            [
                place,
                lambda: sandbox.cancel_order(cid, state["no"]),
                lambda: sandbox.place_order(
                    cid, "NSE", "INFY-EQ", "BUY", 1, order_type="SLM", trigger="99999"
                ),
            ],
            expect=4,
        )
    )
    assert [f["status"] for f in frames[1:]] == ["OPEN", "CANCELLED", "TRIGGER PENDING"]
    assert frames[3]["prctyp"] == "SL-MKT"


def test_frames_go_only_to_that_users_sockets(sandbox, sandbox_account):
    other = sandbox.create_account(daily_login=True)
    mine = sandbox_account.client_id

    async def run() -> list[Any]:
        token = order_token(sandbox, sandbox_account, "g3")
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(sandbox.order_ws_url("g3")) as ws,
        ):
            await ws.send_json({"orderToken": token, "userId": mine})
            await ws.receive_json(timeout=5)
            await asyncio.to_thread(
                sandbox.place_order, other.client_id, "NSE", "SBIN-EQ", "BUY", 1
            )
            await asyncio.to_thread(sandbox.place_order, mine, "NSE", "SBIN-EQ", "BUY", 1)
            return [await ws.receive_json(timeout=5) for _ in range(2)]

    frames = asyncio.run(run())
    assert {f["uid"] for f in frames} == {mine}


def test_a_wrong_token_or_user_is_refused_and_closed(sandbox, sandbox_account):
    token = order_token(sandbox, sandbox_account, "g3")

    async def run(payload: dict[str, str]) -> tuple[Any, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(sandbox.order_ws_url("g3")) as ws,
        ):
            await ws.send_json(payload)
            first = await ws.receive_json(timeout=5)
            closing = await ws.receive(timeout=5)
            return first, closing.type

    for payload in (
        {"orderToken": "nope", "userId": sandbox_account.client_id},
        {"orderToken": token, "userId": "SOMEONE"},
    ):
        first, kind = asyncio.run(run(payload))
        assert first["status"] == "Not_Ok"
        assert kind in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


def test_no_heartbeat_closes_the_socket_and_heartbeats_keep_it(sandbox, sandbox_account):
    sandbox.set_heartbeat_timeout(0.4)
    token = order_token(sandbox, sandbox_account, "g3")
    cid = sandbox_account.client_id

    async def beating() -> bool:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(sandbox.order_ws_url("g3")) as ws,
        ):
            await ws.send_json({"orderToken": token, "userId": cid})
            await ws.receive_json(timeout=5)
            for _ in range(8):  # 1.2 s, three times the timeout
                await ws.send_json({"heartbeat": "h", "userId": cid})
                with contextlib.suppress(asyncio.TimeoutError):
                    msg = await ws.receive(timeout=0.15)
                    return msg.type == aiohttp.WSMsgType.TEXT  # nothing else may arrive
            return not ws.closed

    async def silent() -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(sandbox.order_ws_url("g3")) as ws,
        ):
            await ws.send_json({"orderToken": token, "userId": cid})
            await ws.receive_json(timeout=5)
            msg = await ws.receive(timeout=5)
            return msg.type, ws.close_code

    assert asyncio.run(beating()) is True
    kind, code = asyncio.run(silent())
    assert kind == aiohttp.WSMsgType.CLOSE and code == 1001


def test_push_not_enabled_answers_200_with_an_empty_body(sandbox):
    acct = sandbox.create_account(daily_login=True, push_enabled=False)
    answer = requests.get(
        sandbox.url + PATHS["g3"][0], headers=g3_login(sandbox, acct), timeout=TIMEOUT
    )
    assert answer.status_code == 200 and answer.content == b""
    enabled = sandbox.create_account(daily_login=True)
    sandbox.set_faults(enabled.client_id, push_disabled=True)
    answer = requests.get(
        sandbox.url + PATHS["g3"][0], headers=g3_login(sandbox, enabled), timeout=TIMEOUT
    )
    assert answer.status_code == 200 and answer.content == b""


def test_silent_feed_stays_connected_but_sends_nothing(sandbox, sandbox_account):
    cid = sandbox_account.client_id
    token = order_token(sandbox, sandbox_account, "g3")

    async def run() -> tuple[bool, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(sandbox.order_ws_url("g3")) as ws,
        ):
            await ws.send_json({"orderToken": token, "userId": cid})
            await ws.receive_json(timeout=5)
            await asyncio.to_thread(sandbox.set_faults, cid, push_silent=True)
            await asyncio.to_thread(sandbox.place_order, cid, "NSE", "INFY-EQ", "BUY", 1)
            with pytest.raises(asyncio.TimeoutError):
                await ws.receive_json(timeout=0.5)
            await ws.send_json({"heartbeat": "h", "userId": cid})
            open_still = not ws.closed
            await asyncio.to_thread(sandbox.clear_faults, cid)
            await asyncio.to_thread(sandbox.place_order, cid, "NSE", "INFY-EQ", "SELL", 1)
            return open_still, await ws.receive_json(timeout=5)

    open_still, frame = asyncio.run(run())
    assert open_still and frame["trantype"] == "S"
    assert len(sandbox.orders(cid)) == 2


def test_dropped_websocket_is_cut_without_a_close_frame(sandbox, sandbox_account):
    cid = sandbox_account.client_id
    token = order_token(sandbox, sandbox_account, "g2")

    async def run() -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(sandbox.order_ws_url("g2")) as ws,
        ):
            await ws.send_json({"orderToken": token, "userId": cid})
            await ws.receive_json(timeout=5)
            assert await asyncio.to_thread(sandbox.sockets, cid) == 1
            assert await asyncio.to_thread(sandbox.drop_websockets, cid) == 1
            msg = await ws.receive(timeout=5)
            return msg.type

    kind = asyncio.run(run())
    assert kind in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
    sandbox.wait_for(lambda: sandbox.sockets(cid) == 0)


def test_tradehub_post_to_the_socket_path_gets_json(sandbox):
    answer = requests.post(
        sandbox.url + PATHS["g3"][1], json={"orderToken": "x", "userId": "y"}, timeout=TIMEOUT
    )
    assert answer.status_code == 200 and json.loads(answer.text)["status"] == "Not_Ok"
