"""The engine against the real sandbox broker over sockets.

`world` builds a master and followers whose broker accounts are fresh sandbox accounts,
signed in for today (AliceBlue's daily rule) and connected through the product's own API-key
login (`trading.brokers.sessions.connect_api_key`, over HTTP). `world.tick()` runs one pass
of the real copier (`Copier.tick`: poll, decide, send, track) in this process; its database
work runs in its own thread, so these tests use committed data (`transactional_db`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from accounts.models import BrokerAccount, Follower, Master
from tests.brokers.conftest import point_at_sandbox
from tests.factories import BrokerAccountFactory, FollowerFactory, MasterFactory
from trading.brokers import sessions
from trading.engine.config import CopierConfig
from trading.engine.runner import Copier
from trading.models import CopyTrade, Instrument

_ids = itertools.count(1)


@pytest.fixture
def sbx(sandbox_server: Any, settings: Any) -> Iterator[Any]:
    """The sandbox, reset, with every AliceBlue URL pointed at it and quick engine timings."""
    sandbox_server.reset()
    point_at_sandbox(sandbox_server, settings, read_timeout=2.0)
    settings.TRADING_ROUND_THE_CLOCK = True
    settings.COPIER_AMBIGUOUS_LOOKUP_SECONDS = 1.0
    sandbox_server.set_price("NSE", "INFY-EQ", "1500")  # (a reset keeps the last prices)
    sandbox_server.set_price("NSE", "SBIN-EQ", "800")
    yield sandbox_server
    sandbox_server.reset()


def load_instrument(sbx: Any, exchange: str, symbol: str) -> Instrument:
    """The sandbox's contract-master row for one instrument, as the product stores it."""
    data = sbx.instrument(exchange, symbol)
    row, _ = Instrument.objects.update_or_create(
        exchange=data["exchange"],
        token=str(data["token"]),
        defaults={
            "trading_symbol": data["trading_symbol"],
            "symbol": data["symbol"],
            "lot_size": int(data["lot_size"]) * int(data.get("board_lot") or 1),
            "tick_size": Decimal(data["tick_size"]),
            "freeze_quantity": (
                int(data["freeze_qty"]) * int(data.get("board_lot") or 1)
                if data.get("freeze_qty")
                else None
            ),
            "board_lot_quantity": int(data.get("board_lot") or 1),
            "expiry": date.fromisoformat(data["expiry"]) if data.get("expiry") else None,
            "refreshed_on": date.today(),
        },
    )
    return row


def nifty_future(sbx: Any) -> dict[str, Any]:
    futures = [i for i in sbx.instruments("NFO") if i["instrument_type"] == "FUTIDX"]
    return sorted((f for f in futures if f["symbol"] == "NIFTY"), key=lambda f: f["expiry"])[0]


@dataclass
class World:
    sbx: Any
    master: Master
    master_client: str
    followers: list[Follower] = field(default_factory=list)
    clients: dict[int, str] = field(default_factory=dict)
    config: CopierConfig = field(
        default_factory=lambda: CopierConfig(pnl_refresh=0, drain_timeout=20, contracts=False)
    )

    # --- the master's side ----------------------------------------------------------------
    def place(self, symbol: str, side: str, quantity: int, **kwargs: Any) -> dict[str, Any]:
        exchange = kwargs.pop("exchange", "NFO" if symbol.startswith("NIFTY") else "NSE")
        return self.sbx.place_order(self.master_client, exchange, symbol, side, quantity, **kwargs)

    # --- the followers' side -----------------------------------------------------------------
    def client_of(self, follower: Follower) -> str:
        return self.clients[follower.pk]

    def orders_of(self, follower: Follower) -> list[dict[str, Any]]:
        return self.sbx.orders(self.client_of(follower))

    def net_of(self, follower: Follower, symbol: str) -> int:
        return sum(
            int(p["net_quantity"])
            for p in self.sbx.positions(self.client_of(follower))
            if p["trading_symbol"] == symbol
        )

    def copies(self, follower: Follower | None = None) -> list[CopyTrade]:
        rows = CopyTrade.objects.order_by("pk")
        if follower is not None:
            rows = rows.filter(follower=follower)
        return list(rows)

    # --- the copier ------------------------------------------------------------------------
    def tick(self, passes: int = 1, **config: Any) -> None:
        cfg = self.config if not config else CopierConfig(**{**self.config.__dict__, **config})

        async def go() -> None:
            async with Copier(name="test-copier", config=cfg) as copier:
                for _ in range(passes):
                    await copier.tick()

        asyncio.run(go())

    def run(self, body: Callable[[Copier], Any], **config: Any) -> Any:
        """Run the copier's full loops while ``body(copier)`` (a coroutine function) runs."""
        cfg = self.config if not config else CopierConfig(**{**self.config.__dict__, **config})

        async def go() -> Any:
            copier = Copier(name="test-copier", config=cfg)
            runner = asyncio.create_task(copier.run())
            try:
                return await body(copier)
            finally:
                copier.stop()
                await runner

        return asyncio.run(go())


def sandbox_broker_account(sbx: Any, owner: Any, master: Master, **account: Any) -> tuple[str, Any]:
    info = sbx.create_account(daily_login=True, **account)
    broker = BrokerAccountFactory(
        owner=owner, master=master, client_id=info.client_id, api_key=info.api_key
    )
    sessions.connect_api_key(account=broker)
    return info.client_id, broker


def add_follower(world: World, **limits: Any) -> Follower:
    n = next(_ids)
    account_args = {k: limits.pop(k) for k in ("funds", "push_enabled") if k in limits}
    connect = limits.pop("connect", True)
    follower = FollowerFactory(
        master=world.master,
        user__username=f"fl_engine_{n}",
        display_name=limits.pop("display_name", f"F{n}"),
        **limits,
    )
    if connect:
        client_id, _ = sandbox_broker_account(
            world.sbx, follower.user, world.master, **account_args
        )
    else:
        info = world.sbx.create_account(**account_args)
        BrokerAccountFactory(
            owner=follower.user, master=world.master, client_id=info.client_id, api_key=info.api_key
        )
        client_id = info.client_id
    world.clients[follower.pk] = client_id
    world.followers.append(follower)
    return follower


@pytest.fixture
def make_world(sbx: Any, transactional_db: Any) -> Callable[..., World]:
    def build(
        *followers: dict[str, Any], copy_mode: str = "mirror", **master_account: Any
    ) -> World:
        master = MasterFactory(user__username=f"master_engine_{next(_ids)}", copy_mode=copy_mode)
        client_id, _ = sandbox_broker_account(sbx, master.user, master, **master_account)
        world = World(sbx=sbx, master=master, master_client=client_id)
        load_instrument(sbx, "NSE", "INFY-EQ")
        load_instrument(sbx, "NSE", "SBIN-EQ")
        future = nifty_future(sbx)
        load_instrument(sbx, "NFO", future["trading_symbol"])
        for limits in followers:
            add_follower(world, **limits)
        return world

    return build


def account_of(follower: Follower) -> BrokerAccount:
    return BrokerAccount.objects.get(owner=follower.user)
