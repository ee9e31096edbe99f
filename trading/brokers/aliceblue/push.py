"""Order-update push: AliceBlue's order-notify websocket as a stream of typed events.

    feed = OrderFeed(client)                 # an AsyncAliceBlueClient for the account
    async for event in feed.events():        # runs until feed.stop() or a final state
        match event:
            case OrderEvent(): ...           # an `om` frame as an OrderRow (+ report type)
            case UnknownFrame(): ...         # anything else the server sent, kept raw
            case FeedStateChange(state=FeedState.SILENT): ...   # poll faster
            case FeedStateChange(state=FeedState.PUSH_NOT_ENABLED): ...  # final: poll only

The protocol (PROTOCOL.md §7.2): `createWsToken` (fresh on every connect) → connect → send
`{"orderToken","userId"}` → expect `{"status":"Ok"}` → heartbeat `{"heartbeat":"h","userId"}`
right away and then at least every 50 s → one `{"t":"om",...}` frame per order change.
On close or error it reconnects with exponential backoff and jitter; after
`reconnect_after_silence` seconds without a frame (SILENT meanwhile, which is also what an
idle account looks like) it reconnects too, since a half-open socket looks the same.
An empty token answer
means the account has no push: reported once as PUSH_NOT_ENABLED and the feed ends (no error
loop). A session that expired ends the feed with SESSION_EXPIRED.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from django.utils import timezone

from trading.brokers.aliceblue import mapping
from trading.brokers.aliceblue.client import AsyncAliceBlueClient
from trading.brokers.aliceblue.errors import BrokerError, PushNotEnabled, SessionExpired
from trading.brokers.aliceblue.protocol import Api, num, price, text, when
from trading.brokers.aliceblue.types import OrderRow

logger = logging.getLogger("trading.brokers.aliceblue.push")

HEARTBEAT_SECONDS = 50.0
LOGIN_TIMEOUT_SECONDS = 10.0


class FeedState(enum.StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    SILENT = "silent"  # connected, but nothing received for `silent_after` seconds
    DISCONNECTED = "disconnected"  # will reconnect after a backoff
    PUSH_NOT_ENABLED = "push_not_enabled"  # final
    SESSION_EXPIRED = "session_expired"  # final
    STOPPED = "stopped"  # final (stop() was called)

    @property
    def is_final(self) -> bool:
        return self in (
            FeedState.PUSH_NOT_ENABLED,
            FeedState.SESSION_EXPIRED,
            FeedState.STOPPED,
        )


@dataclass(frozen=True)
class FeedStateChange:
    state: FeedState
    at: datetime
    detail: str = ""
    retry_in: float | None = None


@dataclass(frozen=True)
class OrderEvent:
    """One `om` frame. `report_type` is Noren's (new/modified/fill/cancelled/rejected…);
    `fill_quantity`/`fill_price` describe this fill when the frame is a fill."""

    row: OrderRow
    report_type: str
    received_at: datetime
    fill_quantity: int = 0
    fill_price: Any = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class UnknownFrame:
    raw: str
    received_at: datetime


FeedEvent = OrderEvent | UnknownFrame | FeedStateChange


def parse_order_frame(api: Api, frame: dict[str, Any]) -> OrderEvent:
    """An `om` frame (Noren spellings) → OrderEvent. Raises KeyError without an order no."""
    exchange = text(frame.get("exch"))
    tsym = text(frame.get("tsym"))
    token = text(frame.get("token"))

    def qty(key: str) -> int:
        return api._signed_qty(exchange, token, tsym, num(frame.get(key)))

    quantity = qty("qty")
    filled = qty("fillshares")
    cancelled = qty("cancelqty")
    raw_status = text(frame.get("status"))
    status = mapping.parse_status(raw_status)
    if text(frame.get("amo")).upper() in ("Y", "YES") and status in (
        mapping.OrderStatus.OPEN,
        mapping.OrderStatus.PENDING,
    ):
        status = mapping.OrderStatus.AMO_RECEIVED
    row = OrderRow(
        broker_order_id=text(frame["norenordno"]),
        status=status,
        raw_status=raw_status,
        exchange=exchange,
        token=token,
        trading_symbol=tsym,
        side=mapping.parse_side(frame.get("trantype")),
        quantity=quantity,
        filled_quantity=filled,
        pending_quantity=max(quantity - filled - cancelled, 0) if not status.is_terminal else 0,
        cancelled_quantity=cancelled,
        price=price(frame.get("prc")),
        trigger_price=price(frame.get("trgprc")),
        average_price=price(frame.get("avgprc")),
        order_type=mapping.parse_order_type(frame.get("prctyp")),
        product=mapping.parse_product(frame.get("pcode") or frame.get("prd")),
        complexity=mapping.Complexity.AMO
        if text(frame.get("amo")).upper() in ("Y", "YES")
        else None,
        validity=mapping.parse_validity(frame.get("ret")),
        tag=text(frame.get("remarks")),
        rejection_reason=text(frame.get("rejreason")),
        order_time=when(frame.get("tm") or frame.get("norentm")),
        exchange_time=when(frame.get("exch_tm") or frame.get("fltm")),
        exchange_order_id=text(frame.get("exchordid")),
        raw=dict(frame),
    )
    return OrderEvent(
        row=row,
        report_type=mapping.parse_report_type(frame.get("reporttype")),
        received_at=timezone.now(),
        fill_quantity=qty("flqty"),
        fill_price=price(frame.get("flprc")),
        raw=dict(frame),
    )


class OrderFeed:
    """One account's order-update feed. Run one per master and per follower account."""

    def __init__(
        self,
        client: AsyncAliceBlueClient,
        *,
        ws_url: str | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        silent_after: float = 60.0,
        reconnect_after_silence: float | None = 600.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        login_timeout: float = LOGIN_TIMEOUT_SECONDS,
        connect_timeout: float | None = None,
    ) -> None:
        self.client = client
        self.ws_url = ws_url or client.api.order_ws_url
        self.heartbeat_seconds = heartbeat_seconds
        self.silent_after = silent_after
        self.reconnect_after_silence = reconnect_after_silence
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.login_timeout = login_timeout
        self.client_connect_timeout = connect_timeout or _connect_timeout()
        self.state = FeedState.CONNECTING
        self._announced: FeedState | None = None
        self.connects = 0
        self._queue: asyncio.Queue[FeedEvent] = asyncio.Queue()
        self._stopping = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self._runner: asyncio.Task[None] | None = None

    # --- public ---------------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[FeedEvent]:
        """The feed's events until a final state (PUSH_NOT_ENABLED, SESSION_EXPIRED, STOPPED).

        Consume it from one task (`async for`); call `stop()` from the same event loop.
        """
        self._runner = asyncio.create_task(self._run(), name=f"order-feed-{self.client.client_id}")
        self._runner.add_done_callback(self._runner_done)
        try:
            while True:
                event = await self._queue.get()
                yield event
                if isinstance(event, FeedStateChange) and event.state.is_final:
                    break
        finally:
            self._stopping.set()
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            if self._http is not None:
                await self._http.close()

    def stop(self) -> None:
        """End the feed: the iterator yields STOPPED and finishes."""
        self._stopping.set()
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()

    def _runner_done(self, task: asyncio.Task[None]) -> None:
        if self._announced is None or not self._announced.is_final:
            detail = ""
            if not task.cancelled() and task.exception() is not None:
                detail = f"feed crashed: {task.exception()!r}"
                logger.error("order feed crashed", extra={"ctx": {"error": detail}})
            self._emit_state(FeedState.STOPPED, detail)

    # --- internals ------------------------------------------------------------------------------
    def _emit_state(
        self, state: FeedState, detail: str = "", retry_in: float | None = None
    ) -> None:
        if state == self._announced and state is not FeedState.DISCONNECTED:
            return
        self._announced = state
        self.state = state
        logger.info(
            "order feed %s",
            state.value,
            extra={"ctx": {"client": self.client.client_id, "detail": detail}},
        )
        self._queue.put_nowait(FeedStateChange(state, timezone.now(), detail, retry_in))

    async def _sleep_or_stop(self, seconds: float) -> bool:
        """Sleep; True if stop() was called meanwhile."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        backoff = self.backoff_initial
        while not self._stopping.is_set():
            self._emit_state(FeedState.CONNECTING)
            try:
                token = await self.client.create_ws_token()
            except PushNotEnabled as exc:
                self._emit_state(FeedState.PUSH_NOT_ENABLED, exc.message)
                return
            except SessionExpired as exc:
                self._emit_state(FeedState.SESSION_EXPIRED, exc.message)
                return
            except BrokerError as exc:
                token = None
                detail = str(exc)
            if token is not None:
                connects_before = self.connects
                try:
                    detail = await self._session(token.reveal())
                except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                    detail = f"{exc.__class__.__name__}: {exc}"
                if self.connects > connects_before:
                    backoff = self.backoff_initial  # it worked: start the backoff again
            if self._stopping.is_set():
                break
            delay = min(backoff, self.backoff_max) * random.uniform(0.5, 1.0)
            self._emit_state(FeedState.DISCONNECTED, detail, retry_in=round(delay, 2))
            if await self._sleep_or_stop(delay):
                break
            backoff = min(backoff * 2, self.backoff_max)
        self._emit_state(FeedState.STOPPED)

    async def _session(self, token: str) -> str:
        """One connection: log in, heartbeat, read until it closes. Returns why it ended."""
        if self._http is None or self._http.closed:
            connect = self.client_connect_timeout
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect)
            )
        user_id = self.client.client_id
        async with self._http.ws_connect(
            self.ws_url, timeout=aiohttp.ClientWSTimeout(ws_close=5.0), autoping=True
        ) as ws:
            await ws.send_str(json.dumps({"orderToken": token, "userId": user_id}))
            reply = await ws.receive(timeout=self.login_timeout)
            if reply.type != aiohttp.WSMsgType.TEXT or not _is_ok(reply.data):
                return f"login refused: {str(reply.data)[:80]}"
            self.connects += 1
            self._emit_state(FeedState.CONNECTED)
            heartbeat = asyncio.create_task(self._heartbeat(ws, user_id))
            try:
                return await self._read(ws)
            finally:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await heartbeat

    async def _heartbeat(self, ws: aiohttp.ClientWebSocketResponse, user_id: str) -> None:
        frame = json.dumps({"heartbeat": "h", "userId": user_id})
        while not ws.closed:
            await ws.send_str(frame)
            await asyncio.sleep(self.heartbeat_seconds)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        last_frame = time.monotonic()
        while not self._stopping.is_set():
            try:
                message = await ws.receive(timeout=self.silent_after)
            except TimeoutError:
                quiet = time.monotonic() - last_frame
                self._emit_state(FeedState.SILENT, f"nothing for {quiet:.1f} s")
                limit = self.reconnect_after_silence
                if limit is not None and quiet >= limit:
                    # A half-open connection looks exactly like an idle one: start afresh.
                    return f"silent for {quiet:.1f} s; reconnecting"
                continue
            if message.type in (aiohttp.WSMsgType.PING, aiohttp.WSMsgType.PONG):
                continue
            last_frame = time.monotonic()
            if message.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
            ):
                return f"closed by the server ({ws.close_code})"
            if message.type == aiohttp.WSMsgType.ERROR:
                return f"websocket error: {ws.exception()}"
            if self.state == FeedState.SILENT:
                self._emit_state(FeedState.CONNECTED, "frames again")
            data = (
                message.data
                if message.type == aiohttp.WSMsgType.TEXT
                else bytes(message.data).decode("utf-8", "replace")
            )
            self._queue.put_nowait(self._frame(data))
        return "stopped"

    def _frame(self, data: str) -> OrderEvent | UnknownFrame:
        try:
            frame = json.loads(data)
        except ValueError:
            return UnknownFrame(data, timezone.now())
        if isinstance(frame, dict) and frame.get("t") == "om":
            try:
                return parse_order_frame(self.client.api, frame)
            except (KeyError, TypeError, ValueError):
                logger.warning("unparseable om frame kept raw")
        return UnknownFrame(data, timezone.now())


def _connect_timeout() -> float:
    from django.conf import settings

    return float(settings.ALICEBLUE_CONNECT_TIMEOUT)


def _is_ok(data: Any) -> bool:
    try:
        frame = json.loads(data)
    except (TypeError, ValueError):
        return False
    return isinstance(frame, dict) and str(frame.get("status", "")).strip().lower() == "ok"
