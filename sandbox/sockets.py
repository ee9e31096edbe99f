"""Websockets: order-notify (token from createWsToken, `{"orderToken","userId"}` login,
heartbeats, an `om` frame on every order state change) on both paths AliceBlue uses, and the
NorenWS market-data socket (login ack, touchline/depth subscribe, snapshot then deltas)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import time
from typing import Any

from aiohttp import WSMsgType, web

from sandbox.server import CORE, FeedSocket, OrderSocket, SandboxCore, _bearer, _json


async def create_ws_token(request: web.Request) -> web.Response:
    """G2 path sends `Bearer Token <sessionID>`, G3 path `Bearer <userSession>`; either works."""
    core = request.app[CORE]
    parts = _bearer(request)
    session = core.session(parts[-1]) if parts else None
    if session is None:
        return _json({"status": "Not_Ok", "message": "401", "result": None}, status=401)
    account = core.account(session.client_id)
    if (
        account is None
        or not account.push_enabled
        or core.fault(session.client_id, "push_disabled")
    ):
        return web.Response(status=200, body=b"")  # push not enabled for this account
    token = secrets.token_hex(16)
    core.ws_tokens[token] = (session.client_id, core.clock.today())
    return _json({"status": "Ok", "message": "200", "result": [{"orderToken": token}]})


async def _writer(sock: OrderSocket | FeedSocket) -> None:
    while True:
        text = await sock.queue.get()
        if text is None or sock.ws.closed:
            return
        try:
            await sock.ws.send_str(text)
        except (ConnectionError, RuntimeError):
            return


async def _watchdog(core: SandboxCore, sock: OrderSocket) -> None:
    while not sock.ws.closed:
        await asyncio.sleep(min(1.0, max(core.heartbeat_timeout / 4, 0.05)))
        if time.monotonic() - sock.last_seen > core.heartbeat_timeout:
            await sock.ws.close(code=1001, message=b"heartbeat timeout")
            return


async def order_notify(request: web.Request) -> web.StreamResponse:
    core = request.app[CORE]
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    sock = OrderSocket(ws=ws, request=request)
    writer = asyncio.create_task(_writer(sock))
    watchdog = asyncio.create_task(_watchdog(core, sock))
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            sock.last_seen = time.monotonic()
            try:
                data = json.loads(msg.data)
            except ValueError:
                continue
            if not isinstance(data, dict):
                continue
            if "orderToken" in data:
                entry = core.ws_tokens.get(str(data.get("orderToken")))
                user = str(data.get("userId") or "").strip().upper()
                if entry is None or entry[0] != user or entry[1] != core.clock.today():
                    sock.queue.put_nowait(json.dumps({"status": "Not_Ok", "message": "Invalid"}))
                    sock.queue.put_nowait(None)
                    await writer
                    await ws.close(code=1008, message=b"invalid order token")
                    break
                sock.client_id = user
                core.order_sockets[user].add(sock)
                if not core.fault(user, "push_silent"):
                    sock.queue.put_nowait(json.dumps({"status": "Ok"}))
            # heartbeats {"heartbeat":"h","userId":…} only refresh last_seen; no reply
    finally:
        if sock.client_id:
            core.order_sockets[sock.client_id].discard(sock)
        sock.queue.put_nowait(None)
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watchdog
        with contextlib.suppress(Exception):
            await writer
    return ws


def _susertoken(session_token: str) -> str:
    inner = hashlib.sha256(session_token.encode()).hexdigest()
    return hashlib.sha256(inner.encode()).hexdigest()


def _feed_keys(core: SandboxCore, spec: Any) -> list[tuple[str, str]]:
    keys = []
    for part in str(spec or "").split("#"):
        exch, _, token = part.partition("|")
        key = (exch.strip().upper(), token.strip())
        if key in core.engine.instruments:
            keys.append(key)
    return keys


async def noren_ws(request: web.Request) -> web.StreamResponse:
    core = request.app[CORE]
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    feed = FeedSocket(ws=ws)
    writer = asyncio.create_task(_writer(feed))
    authed = False
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
            except ValueError:
                continue
            if not isinstance(data, dict):
                continue
            kind = data.get("t")
            if kind == "c":
                uid = str(data.get("uid") or "").removesuffix("_API").upper()
                wanted = str(data.get("susertoken") or "")
                authed = any(
                    s.client_id == uid and _susertoken(s.token) == wanted
                    for s in list(core.sessions.values())
                    if core.session(s.token) is not None
                )
                state = "OK" if authed else "Not_Ok"
                feed.queue.put_nowait(json.dumps({"t": "ck", "s": state, "uid": uid}))
                if authed:
                    core.feed_sockets.add(feed)
                else:
                    break
            elif not authed:
                continue
            elif kind in ("t", "d"):
                target = feed.touch if kind == "t" else feed.depth
                for key in _feed_keys(core, data.get("k")):
                    target.add(key)
                    core._send_feed(feed, key, snapshot=True)
            elif kind in ("u", "ud"):
                target = feed.touch if kind == "u" else feed.depth
                for key in _feed_keys(core, data.get("k")):
                    target.discard(key)
    finally:
        core.feed_sockets.discard(feed)
        feed.queue.put_nowait(None)
        with contextlib.suppress(Exception):
            await writer
    return ws


def register(app: web.Application) -> None:
    r = app.router
    r.add_get("/order-notify/ws/createWsToken", create_ws_token)
    r.add_get("/open-api/order-notify/ws/createWsToken", create_ws_token)
    r.add_get("/order-notify/websocket", order_notify)
    r.add_get("/open-api/order-notify/websocket", order_notify)
    r.add_get("/NorenWS/", noren_ws)
    r.add_get("/NorenWS", noren_ws)
