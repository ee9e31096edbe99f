"""The AliceBlue clients: `AliceBlueClient` (synchronous: web connect flows, commands) and
`AsyncAliceBlueClient` (the copier's concurrent send path). Same methods, same typed results,
same errors; both are thin loops over `protocol.Api` calls and a transport.

    session = sessions.session_for(account=account)          # or NeedsDailyLogin
    with AliceBlueClient(session) as broker:
        ack = broker.place_order(OrderRequest(...))
        rows = broker.order_book()

    async with AsyncAliceBlueClient(session) as broker:   # inside the copier's event loop
        ack = await broker.place_order(order)

The generation (Open API or ANT) comes from the session; callers never branch on it.
Non-order calls consume the account's persisted request budget first (BudgetExhausted when
used up); order calls do not. A SessionExpired answer also marks the stored session expired.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from asgiref.sync import sync_to_async

from copytrade.lib.secret import Secret
from trading.brokers.aliceblue.budget import Budget
from trading.brokers.aliceblue.errors import SessionExpired
from trading.brokers.aliceblue.mapping import Dialect, LotTable
from trading.brokers.aliceblue.protocol import Api, Call, Endpoints, Kind, api_for
from trading.brokers.aliceblue.transport import AsyncTransport, SyncTransport
from trading.brokers.aliceblue.types import (
    AccountSession,
    Funds,
    Generation,
    Holding,
    ModifyRequest,
    OrderAck,
    OrderRequest,
    OrderRow,
    Position,
    Profile,
    Quote,
    Trade,
)

logger = logging.getLogger("trading.brokers.aliceblue")
T = TypeVar("T")

_DEFAULT = object()


def latest_by_tag(rows: list[OrderRow], tag: str) -> OrderRow | None:
    """The order carrying `tag` (the newest if the book shows several rows for it)."""
    matches = [row for row in rows if tag and row.tag == tag]
    if not matches:
        return None
    return max(matches, key=lambda r: (r.order_time is not None, r.order_time, r.broker_order_id))


def _expire(session: AccountSession, reason: str) -> None:
    from trading.brokers import sessions

    if session.account_id is not None:
        sessions.mark_expired_by_id(
            account_id=session.account_id, reason=reason, obtained_at=session.obtained_at
        )


class _ClientBase:
    def __init__(
        self,
        session: AccountSession,
        *,
        endpoints: Endpoints | None = None,
        dialect: Dialect | None = None,
        lots: LotTable | None = None,
        budget: Budget | object | None = _DEFAULT,
        on_session_expired: Callable[[AccountSession, str], None] | object | None = _DEFAULT,
    ) -> None:
        self.session = session
        dialect = dialect or Dialect.from_settings()
        self.api: Api = api_for(
            generation=session.generation,
            endpoints=endpoints or Endpoints.from_settings(),
            client_id=session.client_id,
            session=session.token,
            dialect=dialect,
            lots=lots,
        )
        if budget is _DEFAULT:
            budget = Budget(session.account_id) if session.account_id is not None else None
        self.budget: Budget | None = budget  # type: ignore[assignment]
        if on_session_expired is _DEFAULT:
            on_session_expired = _expire if session.account_id is not None else None
        self.on_session_expired: Callable[[AccountSession, str], None] | None = on_session_expired  # type: ignore[assignment]

    @property
    def generation(self) -> Generation:
        return self.session.generation

    @property
    def client_id(self) -> str:
        return self.session.client_id


class AliceBlueClient(_ClientBase):
    """Synchronous client (requests). Not thread-safe per instance; cheap to create."""

    def __init__(
        self,
        session: AccountSession,
        *,
        transport: SyncTransport | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("lots") is None:
            from trading.brokers.instruments import mcx_lot_table

            kwargs["lots"] = mcx_lot_table()
        super().__init__(session, **kwargs)
        self.transport = transport or SyncTransport()
        self._owns_transport = transport is None

    def _run(self, call: Call[T]) -> T:
        if call.kind is not Kind.ORDER and self.budget is not None:
            self.budget.consume(call.op)
        try:
            return self.transport.run(call)
        except SessionExpired as exc:
            if self.on_session_expired is not None:
                self.on_session_expired(self.session, str(exc))
            raise

    def place_order(self, order: OrderRequest) -> OrderAck:
        return self._run(self.api.place_order(order))

    def modify_order(self, change: ModifyRequest) -> OrderAck:
        return self._run(self.api.modify_order(change))

    def cancel_order(self, broker_order_id: str) -> OrderAck:
        return self._run(self.api.cancel_order(broker_order_id))

    def order_book(self) -> list[OrderRow]:
        return self._run(self.api.order_book())

    def order_history(self, broker_order_id: str) -> list[OrderRow]:
        return self._run(self.api.order_history(broker_order_id))

    def trade_book(self) -> list[Trade]:
        return self._run(self.api.trade_book())

    def positions(self) -> list[Position]:
        return self._run(self.api.positions())

    def holdings(self) -> list[Holding]:
        return self._run(self.api.holdings())

    def funds(self) -> Funds:
        return self._run(self.api.funds())

    def profile(self) -> Profile:
        return self._run(self.api.profile())

    def quote(self, exchange: str, token: str) -> Quote:
        return self._run(self.api.quote(exchange, token))

    def create_ws_token(self) -> Secret:
        """The order-update push token (raises PushNotEnabled on an empty answer)."""
        return self._run(self.api.ws_token())

    def find_order_by_tag(self, tag: str) -> OrderRow | None:
        """Look an order up by its tag in the order book (for ambiguous sends)."""
        return latest_by_tag(self.order_book(), tag)

    def close(self) -> None:
        if self._owns_transport:
            self.transport.close()

    def __enter__(self) -> AliceBlueClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncAliceBlueClient(_ClientBase):
    """Asynchronous client (aiohttp). Use inside one event loop; safe for concurrent calls.

    Build it with `await AsyncAliceBlueClient.create(session)` (loads the MCX lot table off
    the event loop) or pass `lots=` yourself; without a lot table MCX orders in the "lots"
    dialect raise UnknownInstrument instead of sending a wrong quantity."""

    def __init__(
        self,
        session: AccountSession,
        *,
        transport: AsyncTransport | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(session, **kwargs)
        self.transport = transport or AsyncTransport()
        self._owns_transport = transport is None
        self._async_expired: Callable[[AccountSession, str], Any] | None = (
            sync_to_async(self.on_session_expired, thread_sensitive=True)
            if self.on_session_expired is not None
            else None
        )

    @classmethod
    async def create(cls, session: AccountSession, **kwargs: Any) -> AsyncAliceBlueClient:
        """Build a client, loading the MCX lot table through the database thread."""
        if kwargs.get("lots") is None:
            from trading.brokers.instruments import mcx_lot_table

            kwargs["lots"] = await sync_to_async(mcx_lot_table, thread_sensitive=True)()
        return cls(session, **kwargs)

    async def _run(self, call: Call[T]) -> T:
        if call.kind is not Kind.ORDER and self.budget is not None:
            await self.budget.aconsume(call.op)
        try:
            return await self.transport.run(call)
        except SessionExpired as exc:
            if self._async_expired is not None:
                await self._async_expired(self.session, str(exc))
            raise

    async def place_order(self, order: OrderRequest) -> OrderAck:
        return await self._run(self.api.place_order(order))

    async def modify_order(self, change: ModifyRequest) -> OrderAck:
        return await self._run(self.api.modify_order(change))

    async def cancel_order(self, broker_order_id: str) -> OrderAck:
        return await self._run(self.api.cancel_order(broker_order_id))

    async def order_book(self) -> list[OrderRow]:
        return await self._run(self.api.order_book())

    async def order_history(self, broker_order_id: str) -> list[OrderRow]:
        return await self._run(self.api.order_history(broker_order_id))

    async def trade_book(self) -> list[Trade]:
        return await self._run(self.api.trade_book())

    async def positions(self) -> list[Position]:
        return await self._run(self.api.positions())

    async def holdings(self) -> list[Holding]:
        return await self._run(self.api.holdings())

    async def funds(self) -> Funds:
        return await self._run(self.api.funds())

    async def profile(self) -> Profile:
        return await self._run(self.api.profile())

    async def quote(self, exchange: str, token: str) -> Quote:
        return await self._run(self.api.quote(exchange, token))

    async def create_ws_token(self) -> Secret:
        return await self._run(self.api.ws_token())

    async def find_order_by_tag(self, tag: str) -> OrderRow | None:
        return latest_by_tag(await self.order_book(), tag)

    async def close(self) -> None:
        if self._owns_transport:
            await self.transport.close()

    async def __aenter__(self) -> AsyncAliceBlueClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


# --- pooled synchronous clients (web process, commands) ---------------------------------------
_local = threading.local()


def client_for(account_id: int, session: AccountSession | None = None) -> AliceBlueClient:
    """A synchronous client for an account's ready session that reuses one connection pool
    per account and thread (requests.Session is not shared between threads). Raises
    NeedsDailyLogin / SessionExpired like `sessions.session_for`. Do not close it."""
    if session is None:
        from trading.brokers import sessions

        session = sessions.session_for(account=account_id)
    pools: dict[int, SyncTransport] = getattr(_local, "pools", None) or {}
    _local.pools = pools
    transport = pools.get(account_id)
    if transport is None:
        transport = pools[account_id] = SyncTransport()
    return AliceBlueClient(session, transport=transport)
