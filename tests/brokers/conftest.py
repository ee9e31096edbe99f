"""Fixtures for the client against the real sandbox broker over sockets (the session-scoped
`sandbox_server` of sandbox.testing, shared with the sandbox's own tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from trading.brokers.aliceblue import protocol
from trading.brokers.aliceblue.client import AliceBlueClient, AsyncAliceBlueClient
from trading.brokers.aliceblue.mapping import StaticLots
from trading.brokers.aliceblue.protocol import Endpoints
from trading.brokers.aliceblue.transport import SyncTransport
from trading.brokers.aliceblue.types import AccountSession, Generation


def point_at_sandbox(sandbox_server: Any, settings: Any, *, read_timeout: float) -> None:
    """Every AliceBlue URL and the vendor app of the product pointed at the sandbox; connect
    timeout 2 s."""
    settings.ALICEBLUE_BROKER = "sandbox"
    settings.ALICEBLUE_OPEN_API_URL = sandbox_server.url
    settings.ALICEBLUE_ANT_API_URL = sandbox_server.url
    settings.ALICEBLUE_LOGIN_URL = sandbox_server.url + "/"
    settings.ALICEBLUE_CONTRACT_URL = sandbox_server.contract_url
    settings.ALICEBLUE_ORDER_WS_URL = sandbox_server.order_ws_url("g3")
    settings.ALICEBLUE_ANT_ORDER_WS_URL = sandbox_server.order_ws_url("g2")
    settings.ALICEBLUE_APP_CODE = sandbox_server.vendor_app.app_code
    settings.ALICEBLUE_API_SECRET = sandbox_server.vendor_app.api_secret
    settings.ALICEBLUE_CONNECT_TIMEOUT = 2.0
    settings.ALICEBLUE_READ_TIMEOUT = read_timeout


@pytest.fixture
def sbx(sandbox_server: Any, settings: Any) -> Iterator[Any]:
    """The sandbox, reset, with every AliceBlue URL of the product pointed at it."""
    sandbox_server.reset()
    point_at_sandbox(sandbox_server, settings, read_timeout=3.0)
    yield sandbox_server
    sandbox_server.reset()


def sandbox_endpoints(sbx: Any) -> Endpoints:
    return Endpoints(
        open_api=sbx.url,
        ant_api=sbx.url,
        login=sbx.url + "/",
        order_ws=sbx.order_ws_url("g3"),
        ant_order_ws=sbx.order_ws_url("g2"),
    )


def mcx_lots(sbx: Any) -> StaticLots:
    lots: dict[tuple[str, str], int] = {}
    for row in sbx.instruments("MCX"):
        board = int(row.get("board_lot") or 1)
        lots[("MCX", str(row["token"]))] = board
        lots[("MCX", str(row["trading_symbol"]))] = board
    return StaticLots(lots)


def login(sbx: Any, generation: Generation, client_id: str) -> AccountSession:
    """A fresh API session for a sandbox account (it must have signed in today)."""
    endpoints = sandbox_endpoints(sbx)
    transport = SyncTransport(connect_timeout=2, read_timeout=5)
    try:
        if generation is Generation.ANT:
            info = sbx.account(client_id)
            from copytrade.lib.secret import Secret

            enc = transport.run(protocol.ant_enc_key_call(endpoints, user_id=client_id))
            grant = transport.run(
                protocol.ant_session_call(
                    endpoints, user_id=client_id, api_key=Secret(info.api_key), enc_key=enc
                )
            )
        else:
            from copytrade.lib.secret import Secret

            code = sbx.auth_code(client_id)
            grant = transport.run(
                protocol.open_api_session_call(
                    endpoints,
                    user_id=client_id,
                    auth_code=code,
                    api_secret=Secret(sbx.vendor_app.api_secret),
                )
            )
    finally:
        transport.close()
    return AccountSession(client_id=grant.client_id, generation=generation, token=grant.token)


class Broker:
    """Runs the same client call through the sync or the async client."""

    def __init__(self, sbx: Any, session: AccountSession, mode: str, **kwargs: Any) -> None:
        self.sbx = sbx
        self.session = session
        self.mode = mode
        self.kwargs = {
            "endpoints": sandbox_endpoints(sbx),
            "lots": mcx_lots(sbx),
            "budget": None,
            "on_session_expired": None,
            **kwargs,
        }

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kw: Any) -> Any:
            if self.mode == "sync":
                with AliceBlueClient(self.session, **self.kwargs) as client:
                    return getattr(client, name)(*args, **kw)

            async def go() -> Any:
                async with AsyncAliceBlueClient(self.session, **self.kwargs) as client:
                    return await getattr(client, name)(*args, **kw)

            return asyncio.run(go())

        return call
