"""The sandbox broker's aiohttp application: one event loop serving AliceBlue's REST paths
(Open API and ANT), the vendor login page, the order-notify websockets, the NorenWS market-data
websocket, contract-master files, the trading terminal and a token-protected control API for
the test harness.

`SandboxCore` owns the state (engine, sessions, cached settings from the state file);
`build_app(core)` wires the routes. Injected latency is `await asyncio.sleep`, never blocking.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import random
import secrets
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox import engine as E
from sandbox import options, wire
from sandbox.calendar import NSE_HOLIDAYS, Calendar
from sandbox.clock import IST, Clock
from sandbox.contracts import EXCHANGES, Instrument, build_universe, render_csv, render_json_v2
from sandbox.store import GLOBAL, Account, Store, StoreError

log = logging.getLogger("sandbox")

G3 = "/open-api/od/v1/"
G2 = "/rest/AliceBlueAPIService/api/"
CONTROL_PATH = "/__sandbox__/control"
CONTROL_HEADER = "X-Sandbox-Control"
AUTH_CODE_TTL = 300.0  # seconds an authCode stays usable
CONFIG_POLL_SECONDS = 0.25

MSG_NOT_LOGGED_IN = "User does not login. Please login"
MSG_INVALID_INPUT = "Invalid Input"
MSG_API_KEY = "Invalid API key"
MSG_INVALID_AUTH_CODE = "Invalid auth code"
MSG_SESSION_EXPIRED = "Session Expired"
MSG_NO_DATA = "No Data"


class ControlError(Exception):
    pass


@dataclass
class Session:
    token: str
    client_id: str
    kind: str  # g2 | g3
    day: date
    epoch: int


@dataclass(eq=False)
class OrderSocket:
    ws: web.WebSocketResponse
    request: web.Request
    client_id: str | None = None
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    last_seen: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class FeedSocket:
    ws: web.WebSocketResponse
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    touch: set[tuple[str, str]] = field(default_factory=set)
    depth: set[tuple[str, str]] = field(default_factory=set)
    last: dict[tuple[str, str], str] = field(default_factory=dict)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SandboxCore:
    def __init__(
        self,
        state_path: str | Path,
        *,
        round_the_clock: bool = False,
        seed: int = 0,
        walk_interval: float | None = 1.0,
        heartbeat_timeout: float = 75.0,
        clock: Clock | None = None,
    ) -> None:
        self.store = Store(state_path)
        self.clock = clock or Clock()
        self.calendar = Calendar(round_the_clock=round_the_clock)
        self.rng = random.Random(seed)
        self.walk_interval = walk_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.default_heartbeat_timeout = heartbeat_timeout
        self.control_token = self.store.secret("control_token")
        self.signing_key = self.store.secret("signing_key").encode()
        self.store.vendor_app()
        self.accounts: dict[str, Account] = {}
        self.logins_today: set[str] = set()
        self.logins_day: date | None = None
        self.faults: dict[str, dict[str, Any]] = {}
        self.matching: dict[str, dict[str, Any]] = {}
        self.dialect: dict[str, str] = options.default_dialect()
        self.app_code = self.api_secret = self.redirect_url = ""
        self.config_version = -1
        self.sessions: dict[str, Session] = {}
        self.enc_keys: dict[str, str] = {}
        self.auth_codes: dict[str, tuple[str, float]] = {}
        self.ws_tokens: dict[str, tuple[str, date]] = {}
        self.order_sockets: dict[str, set[OrderSocket]] = defaultdict(set)
        self.feed_sockets: set[FeedSocket] = set()
        self.tasks: list[asyncio.Task[Any]] = []
        self.universe_day: date | None = None
        self.universe: list[Instrument] = []
        self.files: dict[str, str] = {}
        self.engine = E.Engine(
            [],
            clock=self.clock,
            calendar=self.calendar,
            terms=self._terms,
            seed=seed,
            order_no=self._next_order_no,
            trade_no=lambda: self.store.next_seq("fill", 29599400),
        )
        self._refresh_universe()
        orders, trades = self.store.load_book()
        self.engine.restore(orders, trades)
        for key, price in self.store.load_prices().items():
            if key in self.engine.instruments:
                self.engine.prices[key] = price
        for token, cid, kind, day, epoch in self.store.sessions():
            self.sessions[token] = Session(token, cid, kind, day, epoch)
        self.reload(force=True)

    # --- configuration from the state file --------------------------------------------------------
    def reload(self, *, force: bool = False) -> None:
        version = self.store.config_version()
        if version == self.config_version and not force:
            self._refresh_logins()
            return
        old_ws = {cid: a.ws_epoch for cid, a in self.accounts.items()}
        self.config_version = version
        self.accounts = {a.client_id: a for a in self.store.accounts()}
        self.faults = self.store.overrides("faults")
        self.matching = self.store.overrides("matching")
        self.dialect = self.store.dialect()
        app = self.store.vendor_app()
        self.app_code, self.api_secret, self.redirect_url = (
            app.app_code,
            app.api_secret,
            app.redirect_url,
        )
        self.logins_day = None
        self._refresh_logins()
        for cid, account in self.accounts.items():
            if cid in old_ws and account.ws_epoch != old_ws[cid]:
                self._drop_sockets(cid)

    def _refresh_logins(self) -> None:
        today = self.clock.today()
        if self.logins_day != today:
            self.logins_day = today
            self.logins_today = self.store.daily_logins(today)

    def _terms(self, client_id: str) -> tuple[Decimal, int]:
        account = self.accounts.get(client_id)
        funds = account.funds if account else Decimal(0)
        chunk = self.setting("matching", client_id, "partial_fill_qty")
        return funds, int(chunk)

    def setting(self, kind: str, client_id: str | None, name: str) -> Any:
        table = self.faults if kind == "faults" else self.matching
        if client_id and name in table.get(client_id, {}):
            return table[client_id][name]
        if name in table.get(GLOBAL, {}):
            return table[GLOBAL][name]
        spec = options.FAULTS if kind == "faults" else options.MATCHING
        return spec[name][0]

    def fault(self, client_id: str | None, name: str) -> Any:
        return self.setting("faults", client_id, name)

    def chance(self, client_id: str | None, name: str) -> bool:
        rate = float(self.fault(client_id, name))
        return rate > 0 and self.rng.random() < rate

    def _next_order_no(self, day: date) -> str:
        return f"{day:%y%m%d}{self.store.next_seq('order'):09d}"

    def _refresh_universe(self) -> None:
        today = self.clock.today()
        if today == self.universe_day:
            return
        self.universe_day = today
        self.universe = build_universe(today, self.calendar.is_trading_day)
        self.engine.load_instruments(self.universe)
        self.files = {}

    def contract_file(self, exchange: str, kind: str) -> str:
        self._refresh_universe()
        key = f"{exchange}.{kind}"
        if key not in self.files:
            if kind == "json":
                self.files[key] = render_json_v2(exchange, self.universe)
            else:
                self.files[key] = render_csv(exchange, self.universe)
        return self.files[key]

    # --- accounts, sessions -----------------------------------------------------------------------
    def account(self, client_id: str | None) -> Account | None:
        if not client_id:
            return None
        cid = str(client_id).strip().upper()
        account = self.accounts.get(cid)
        if account is None:
            self.reload()
            account = self.accounts.get(cid)
        return account

    def signed_in_today(self, client_id: str) -> bool:
        self._refresh_logins()
        if client_id not in self.logins_today:
            self.logins_today = self.store.daily_logins(self.clock.today())
        return client_id in self.logins_today

    def record_daily_login(self, client_id: str, via: str) -> None:
        self.store.record_daily_login(client_id, self.clock.today(), via)
        self.reload()
        self.logins_today.add(client_id)

    def issue_session(self, account: Account, kind: str) -> str:
        now = self.clock.now()
        if kind == "g3":
            header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "sandbox"}).encode())
            iat = int(now.timestamp())
            payload = _b64(
                json.dumps(
                    {
                        "exp": iat + 60 * 86400,
                        "iat": iat,
                        "jti": secrets.token_hex(8),
                        "iss": "sandbox://idaas/realms/AliceBlue",
                        "azp": "alice-kb",
                        "typ": "Bearer",
                        "sub": account.client_id,
                        "ucc": account.client_id,
                    }
                ).encode()
            )
            sig = _b64(
                hmac.new(self.signing_key, f"{header}.{payload}".encode(), "sha256").digest()
            )
            token = f"{header}.{payload}.{sig}"
        else:
            token = secrets.token_urlsafe(36).replace("-", "x").replace("_", "y")
        session = Session(token, account.client_id, kind, now.date(), account.session_epoch)
        self.sessions[token] = session
        self.store.save_session(token, account.client_id, kind, session.day, session.epoch)
        return token

    def session(self, token: str | None, client_id: str | None = None) -> Session | None:
        """A live session for `token` (bound to today's IST date and not revoked)."""
        if not token:
            return None
        session = self.sessions.get(token)
        if session is None:
            return None
        if client_id and session.client_id != client_id.strip().upper():
            return None
        account = self.account(session.client_id)
        if account is None or account.session_epoch != session.epoch:
            return None
        if session.day != self.clock.today():
            return None
        return session

    # --- after every engine change ----------------------------------------------------------------
    def flush(self) -> None:
        events, dirty, trades = self.engine.drain()
        if dirty or trades:
            self.store.save_book(
                [(o.order_no, o.client_id, o.to_dict()) for o in dirty],
                [(t.fill_id, t.client_id, t.order_no, t.to_dict()) for t in trades],
            )
        now = self.clock.now()
        for event in events:
            cid = event.order.client_id
            if self.fault(cid, "push_silent"):
                continue
            sockets = self.order_sockets.get(cid)
            if not sockets:
                continue
            text = json.dumps(wire.om_frame(event, self.dialect, now))
            for sock in list(sockets):
                sock.queue.put_nowait(text)
        changes, self.engine.price_changes = self.engine.price_changes, set()
        if changes and self.feed_sockets:
            for feed in list(self.feed_sockets):
                for key in changes & (feed.touch | feed.depth):
                    self._send_feed(feed, key, snapshot=False)

    def _drop_sockets(self, client_id: str | None) -> int:
        dropped = 0
        for cid, sockets in list(self.order_sockets.items()):
            if client_id and cid != client_id:
                continue
            for sock in list(sockets):
                transport = sock.request.transport
                if transport is not None:
                    transport.abort()
                sock.queue.put_nowait(None)
                dropped += 1
        return dropped

    # --- market data ------------------------------------------------------------------------------
    def quote(self, inst: Instrument) -> dict[str, Any]:
        key = (inst.exchange, inst.token)
        ltp = self.engine.prices[key]
        close = self.engine.close[key]
        change = ltp - close
        return {
            "ltp": ltp,
            "close": close,
            "change": change,
            "pct": (change / close * 100).quantize(E.CENT) if close else E.ZERO,
        }

    def _send_feed(self, feed: FeedSocket, key: tuple[str, str], *, snapshot: bool) -> None:
        inst = self.engine.instruments.get(key)
        if inst is None:
            return
        q = self.quote(inst)
        now = self.clock.now()
        values = {
            "lp": wire.p2(q["ltp"]),
            "pc": wire.p2(q["pct"]),
            "cv": wire.p2(q["change"]),
            "ft": str(int(now.timestamp())),
            "ltt": now.strftime("%H:%M:%S"),
        }
        depth = key in feed.depth
        if snapshot:
            frame = {
                "t": "dk" if depth else "tk",
                "e": inst.exchange,
                "tk": inst.token,
                "ts": inst.trading_symbol,
                "pp": "2",
                "ls": str(inst.lot_size),
                "ti": str(inst.tick_size),
                "c": wire.p2(q["close"]),
                "o": wire.p2(q["close"]),
                "h": wire.p2(max(q["close"], q["ltp"])),
                "l": wire.p2(min(q["close"], q["ltp"])),
                "v": "0",
                **values,
            }
        else:
            frame = {"t": "df" if depth else "tf", "e": inst.exchange, "tk": inst.token, **values}
        feed.queue.put_nowait(json.dumps(frame))

    # --- control (test harness, management) -------------------------------------------------------
    def control(self, op: str, args: dict[str, Any]) -> Any:
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            raise ControlError(f"unknown control operation {op!r}")
        try:
            result = handler(**args)
        except (StoreError, options.OptionError, wire.WireError, ValueError, TypeError) as exc:
            text = exc.text if isinstance(exc, wire.WireError) else str(exc)
            code = f"{exc.code}: " if isinstance(exc, wire.WireError) else ""
            raise ControlError(f"{code}{text}") from exc
        self.flush()
        return result

    def _account_info(self, account: Account) -> dict[str, Any]:
        return {
            **account.public(),
            "app_code": self.app_code,
            "api_secret": self.api_secret,
            "redirect_url": self.redirect_url,
        }

    def op_create_account(
        self,
        client_id: str | None = None,
        funds: str | int = "1000000",
        password: str | None = None,
        name: str | None = None,
        push_enabled: bool = True,
    ) -> dict[str, Any]:
        account = self.store.create_account(
            client_id, funds=funds, password=password, name=name, push_enabled=push_enabled
        )
        self.reload()
        return self._account_info(account)

    def op_account(self, client_id: str) -> dict[str, Any]:
        return self._account_info(self.store.require(client_id))

    def op_update_account(
        self, client_id: str, funds: str | None = None, push_enabled: bool | None = None
    ) -> dict[str, Any]:
        account = self.store.update_account(
            client_id,
            funds=Decimal(str(funds)) if funds is not None else None,
            push_enabled=push_enabled,
        )
        self.reload()
        return self._account_info(account)

    def op_vendor_app(self) -> dict[str, str]:
        return {
            "app_code": self.app_code,
            "api_secret": self.api_secret,
            "redirect_url": self.redirect_url,
        }

    def op_set_redirect_url(self, url: str) -> dict[str, str]:
        self.store.set_redirect_url(url)
        self.reload()
        return self.op_vendor_app()

    def op_daily_login(self, client_id: str) -> dict[str, str]:
        account = self.store.require(client_id)
        self.record_daily_login(account.client_id, "harness")
        return {"client_id": account.client_id, "day": self.clock.today().isoformat()}

    def op_auth_code(self, client_id: str) -> dict[str, str]:
        """What the vendor login page does: daily sign-in + a fresh single-use authCode."""
        account = self.store.require(client_id)
        self.record_daily_login(account.client_id, "vendor-login")
        return {"authCode": self.new_auth_code(account.client_id), "userId": account.client_id}

    def new_auth_code(self, client_id: str) -> str:
        code = secrets.token_urlsafe(24)
        self.auth_codes[code] = (client_id, time.monotonic() + AUTH_CODE_TTL)
        return code

    def op_expire_sessions(self, client_id: str | None = None) -> int:
        count = self.store.expire_sessions(client_id)
        self.reload()
        return count

    def op_drop_websockets(self, client_id: str | None = None) -> int:
        if client_id:
            client_id = self.store.require(client_id).client_id
        return self._drop_sockets(client_id)

    def op_set_faults(self, client_id: str | None = None, **values: Any) -> dict[str, Any]:
        merged = self.store.set_overrides("faults", client_id or GLOBAL, values)
        self.reload()
        return merged

    def op_clear_faults(self, client_id: str | None = None) -> None:
        self.store.clear_overrides("faults", client_id)
        self.reload()

    def op_set_matching(self, client_id: str | None = None, **values: Any) -> dict[str, Any]:
        merged = self.store.set_overrides("matching", client_id or GLOBAL, values)
        self.reload()
        return merged

    def op_clear_matching(self, client_id: str | None = None) -> None:
        self.store.clear_overrides("matching", client_id)
        self.reload()

    def op_set_dialect(self, **values: Any) -> dict[str, str]:
        result = self.store.set_dialect(values)
        self.reload()
        return result

    def op_reset_dialect(self) -> dict[str, str]:
        result = self.store.reset_dialect()
        self.reload()
        return result

    def _instrument(self, exchange: str, symbol_or_token: str | int) -> Instrument:
        inst = self.engine.lookup(str(exchange).upper(), symbol_or_token)
        if inst is None:
            raise ValueError(f"no instrument {exchange}:{symbol_or_token}")
        return inst

    def op_instrument(self, exchange: str, symbol_or_token: str | int) -> dict[str, Any]:
        inst = self._instrument(exchange, symbol_or_token)
        return {
            "exchange": inst.exchange,
            "token": inst.token,
            "symbol": inst.symbol,
            "trading_symbol": inst.trading_symbol,
            "lot_size": inst.lot_size,
            "tick_size": str(inst.tick_size),
            "freeze_qty": inst.freeze_qty,
            "board_lot": inst.board_lot,
            "expiry": inst.expiry.isoformat() if inst.expiry else None,
            "strike": str(inst.strike) if inst.strike is not None else None,
            "option_type": inst.option_type,
            "instrument_type": inst.instrument_type,
            "ltp": str(self.engine.ltp(inst)),
        }

    def op_instruments(self, exchange: str) -> list[dict[str, Any]]:
        self._refresh_universe()
        return [
            self.op_instrument(i.exchange, i.token)
            for i in self.universe
            if i.exchange == exchange.upper() and not i.is_index
        ]

    def op_set_price(self, exchange: str, symbol_or_token: str | int, price: str) -> str:
        inst = self._instrument(exchange, symbol_or_token)
        try:
            value = Decimal(str(price))
        except InvalidOperation:
            raise ValueError(f"invalid price {price!r}") from None
        return str(self.engine.set_price(inst, value))

    def op_price(self, exchange: str, symbol_or_token: str | int) -> str:
        return str(self.engine.ltp(self._instrument(exchange, symbol_or_token)))

    def op_set_walk(self, interval: float | None) -> None:
        self.walk_interval = interval

    def op_walk(self, steps: int = 1) -> None:
        for _ in range(steps):
            self.engine.walk()

    def op_step(self) -> None:
        self.engine.step()

    def op_now(self) -> str:
        return self.clock.now().isoformat()

    def op_set_clock(self, when: str) -> str:
        self.clock.set(datetime.fromisoformat(when))
        return self._after_clock()

    def op_advance(self, seconds: float) -> str:
        self.clock.advance(float(seconds))
        return self._after_clock()

    def op_reset_clock(self) -> str:
        self.clock.reset()
        return self._after_clock()

    def _after_clock(self) -> str:
        self._refresh_universe()
        self._refresh_logins()
        self.engine.housekeeping()
        return self.clock.now().isoformat()

    def op_set_round_the_clock(self, enabled: bool) -> None:
        self.calendar.round_the_clock = bool(enabled)
        self.engine.housekeeping()

    def op_set_holidays(self, days: list[str]) -> None:
        self.calendar.set_holidays(date.fromisoformat(d) for d in days)

    def op_set_heartbeat_timeout(self, seconds: float) -> None:
        self.heartbeat_timeout = float(seconds)

    def op_place_order(
        self,
        client_id: str,
        exchange: str,
        symbol_or_token: str | int,
        side: str,
        quantity: int,
        order_type: str = "MARKET",
        product: str = "MIS",
        price: str | None = None,
        trigger: str | None = None,
        validity: str = "DAY",
        complexity: str = "REGULAR",
        tag: str = "",
    ) -> dict[str, Any]:
        account = self.store.require(client_id)
        inst = self._instrument(exchange, symbol_or_token)
        spec = wire.parse_g3_order(
            {
                "exchange": inst.exchange,
                "instrumentId": inst.token,
                "transactionType": side,
                "quantity": quantity,
                "orderComplexity": complexity,
                "product": product,
                "orderType": order_type,
                "price": price,
                "slTriggerPrice": trigger,
                "validity": validity,
                "orderTag": tag,
            },
            self.engine,
            self.dialect,
        )
        spec.source, spec.generation = "WEB", "harness"
        order = self.engine.place(account.client_id, spec)
        return snapshot_order(order)

    def op_modify_order(
        self,
        client_id: str,
        order_no: str,
        quantity: int | None = None,
        order_type: str | None = None,
        price: str | None = None,
        trigger: str | None = None,
    ) -> dict[str, Any]:
        order = self._order(client_id, order_no)
        units = quantity * order.unit_factor if quantity is not None else None
        error = self.engine.modify(
            order,
            units=units,
            order_type=order_type,
            price=Decimal(str(price)) if price is not None else None,
            trigger=Decimal(str(trigger)) if trigger is not None else None,
        )
        if error:
            raise ValueError(error)
        return snapshot_order(order)

    def op_cancel_order(self, client_id: str, order_no: str) -> dict[str, Any]:
        order = self._order(client_id, order_no)
        if not self.engine.cancel(order):
            raise ValueError("order is not open")
        return snapshot_order(order)

    def _order(self, client_id: str, order_no: str) -> E.Order:
        order = self.engine.orders.get(str(order_no))
        if order is None or order.client_id != client_id.strip().upper():
            raise ValueError(f"no order {order_no} for {client_id}")
        return order

    def op_orders(self, client_id: str) -> list[dict[str, Any]]:
        cid = client_id.strip().upper()
        return [snapshot_order(o) for o in self.engine.orders_by_client.get(cid, ())]

    def op_trades(self, client_id: str) -> list[dict[str, Any]]:
        cid = client_id.strip().upper()
        return [
            {
                "fill_id": t.fill_id,
                "order_no": t.order_no,
                "exchange": t.exchange,
                "token": t.token,
                "trading_symbol": t.trading_symbol,
                "side": t.side,
                "product": t.product,
                "quantity": t.units // t.unit_factor,
                "units": t.units,
                "price": str(t.price),
                "tag": t.tag,
                "at": t.at.isoformat(),
            }
            for t in self.engine.trades_by_client.get(cid, ())
        ]

    def op_positions(self, client_id: str) -> list[dict[str, Any]]:
        out = []
        for pos in self.engine.positions(client_id.strip().upper()):
            factor = wire.position_factor(pos, self.dialect)
            out.append(
                {
                    "exchange": pos.exchange,
                    "token": pos.token,
                    "trading_symbol": pos.trading_symbol,
                    "product": pos.product,
                    "net_quantity": pos.net_units // factor,
                    "net_units": pos.net_units,
                    "buy_quantity": pos.buy_units // factor,
                    "sell_quantity": pos.sell_units // factor,
                    "average_price": str(pos.net_avg),
                    "ltp": str(pos.ltp),
                    "realised": str(pos.realised),
                    "unrealised": str(pos.unrealised),
                }
            )
        return out

    def op_funds(self, client_id: str) -> dict[str, str]:
        funds = self.engine.funds(self.store.require(client_id).client_id)
        return {
            "opening": str(funds.opening),
            "realised": str(funds.realised),
            "unrealised": str(funds.unrealised),
            "used_margin": str(funds.used_margin),
            "available": str(funds.available),
        }

    def op_sockets(self, client_id: str | None = None) -> int:
        return sum(
            len(s) for cid, s in self.order_sockets.items() if not client_id or cid == client_id
        )

    def op_ping(self) -> str:
        return "pong"

    def op_reset(self, round_the_clock: bool = True) -> None:
        """Back to defaults between tests: no faults, default matching and dialect, real time."""
        self.store.clear_overrides("faults")
        self.store.clear_overrides("matching")
        self.store.reset_dialect()
        self.reload()
        self.clock.reset()
        self.calendar.round_the_clock = round_the_clock
        self.calendar.set_holidays(NSE_HOLIDAYS)
        self.walk_interval = None
        self.heartbeat_timeout = self.default_heartbeat_timeout
        self._after_clock()

    # --- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        self.tasks.append(asyncio.create_task(self._poll_config()))
        self.tasks.append(asyncio.create_task(self._ticker()))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()
        for sockets in self.order_sockets.values():
            for sock in list(sockets):
                sock.queue.put_nowait(None)
                with contextlib.suppress(Exception):
                    await sock.ws.close()
        for feed in list(self.feed_sockets):
            feed.queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await feed.ws.close()
        with contextlib.suppress(Exception):
            self.store.save_prices(self.engine.prices)
        self.store.close()

    async def _poll_config(self) -> None:
        while True:
            await asyncio.sleep(CONFIG_POLL_SECONDS)
            try:
                self.reload()
            except Exception:
                log.exception("sandbox: reloading the state file failed")

    async def _ticker(self) -> None:
        last_walk = time.monotonic()
        saved = time.monotonic()
        while True:
            await asyncio.sleep(0.2)
            try:
                self._refresh_universe()
                if self.walk_interval and time.monotonic() - last_walk >= self.walk_interval:
                    last_walk = time.monotonic()
                    self.engine.walk()
                self.engine.housekeeping()
                self.flush()
                if time.monotonic() - saved > 30:
                    saved = time.monotonic()
                    self.store.save_prices(self.engine.prices)
            except Exception:
                log.exception("sandbox: ticker step failed")


def snapshot_order(order: E.Order) -> dict[str, Any]:
    f = order.unit_factor
    return {
        "order_no": order.order_no,
        "client_id": order.client_id,
        "exchange": order.exchange,
        "token": order.token,
        "trading_symbol": order.trading_symbol,
        "side": order.side,
        "quantity": order.units // f,
        "units": order.units,
        "filled_quantity": order.filled_units // f,
        "pending_quantity": order.pending_units // f,
        "cancelled_quantity": order.cancelled_units // f,
        "product": order.product,
        "order_type": order.order_type,
        "price": str(order.price),
        "trigger": str(order.trigger),
        "average_price": str(order.avg_price),
        "status": order.status,
        "reason": order.reason,
        "tag": order.tag,
        "validity": order.validity,
        "complexity": order.complexity,
        "source": order.source,
        "generation": order.generation,
        "placed_at": order.placed_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
        "statuses": [h["status"] for h in order.history],
        "reports": [h["report"] for h in order.history],
    }


# --- HTTP -----------------------------------------------------------------------------------------
CORE: web.AppKey[SandboxCore] = web.AppKey("core", SandboxCore)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _BadJson() from None


class _BadJson(Exception):
    pass


def _bearer(request: web.Request) -> list[str]:
    header = request.headers.get("Authorization", "").strip()
    parts = header.split()
    if parts and parts[0].lower() == "bearer":
        return parts[1:]
    return []


def generation(path: str) -> str | None:
    if path.startswith("/open-api/"):
        return "g3"
    if path.startswith("/rest/") or path.startswith("/order-notify/"):
        return "g2"
    return None


def _peek_client(core: SandboxCore, request: web.Request) -> str | None:
    parts = _bearer(request)
    if parts:
        session = core.sessions.get(parts[-1])
        if session is not None:
            return session.client_id
    return None


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    gen = generation(request.path)
    if gen is None or request.path.endswith("/websocket"):
        return await handler(request)
    core = request.app[CORE]
    cid = _peek_client(core, request)
    latency = int(core.fault(cid, "latency_ms"))
    jitter = int(core.fault(cid, "jitter_ms"))
    if latency or jitter:
        await asyncio.sleep((latency + core.rng.uniform(0, jitter)) / 1000)
    if core.chance(cid, "rate_limit_rate"):
        if gen == "g3":
            body = {"status": "Not_Ok", "message": "Too many requests", "result": None}
        else:
            body = wire.g2_error("Too many requests", core.dialect)
        return _json(body, status=429)
    if core.chance(cid, "error_rate"):
        status = int(core.fault(cid, "error_status"))
        reason = {500: "Internal Server Error", 502: "Bad Gateway", 504: "Gateway Time-out"}
        title = f"{status} {reason.get(status, 'Service Temporarily Unavailable')}"
        html = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
        return web.Response(text=html, status=status, content_type="text/html")
    try:
        return await handler(request)
    except _BadJson:
        if gen == "g3":
            return _json(wire.g3_error("EC914", core.dialect))
        return _json(wire.g2_error(MSG_INVALID_INPUT, core.dialect))


async def maybe_hang(core: SandboxCore, request: web.Request, client_id: str) -> bool:
    """The accepted-then-unanswered fault: hold the request, then drop the connection."""
    if not core.chance(client_id, "order_timeout_rate"):
        return False
    await asyncio.sleep(int(core.fault(client_id, "timeout_hold_ms")) / 1000)
    transport = request.transport
    if transport is not None:
        transport.abort()
    return True


def build_app(core: SandboxCore) -> web.Application:
    from sandbox import api_g2, api_g3, pages, sockets

    app = web.Application(middlewares=[fault_middleware], client_max_size=1024 * 1024)
    app[CORE] = core
    api_g3.register(app)
    api_g2.register(app)
    sockets.register(app)
    pages.register(app)
    app.router.add_post(CONTROL_PATH, control_view)
    app.router.add_get("/restpy/static/contract_master/{name}", contract_view)
    app.router.add_get("/restpy/static/contract_master/V2/{name}", contract_v2_view)
    app.router.add_get("/restpy/static/contract_master/sandbox/FREEZE.csv", freeze_view)

    async def on_startup(app: web.Application) -> None:
        await app[CORE].start()

    async def on_cleanup(app: web.Application) -> None:
        await app[CORE].stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


async def control_view(request: web.Request) -> web.Response:
    core = request.app[CORE]
    token = request.headers.get(CONTROL_HEADER, "")
    if not hmac.compare_digest(token.encode(), core.control_token.encode()):
        return _json({"error": "forbidden"}, status=403)
    try:
        body = await _body(request)
    except _BadJson:
        return _json({"error": "invalid JSON"}, status=400)
    if not isinstance(body, dict) or not isinstance(body.get("op"), str):
        return _json({"error": "expected {op, args}"}, status=400)
    try:
        result = core.control(body["op"], body.get("args") or {})
    except ControlError as exc:
        return _json({"error": str(exc)}, status=400)
    return _json({"result": result})


def _contract_name(name: str) -> tuple[str, str] | None:
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    exchange = stem.upper()
    if exchange not in (*EXCHANGES, "INDICES"):
        return None
    if ext.lower() == "csv":
        return exchange, "csv"
    if ext == "":
        return exchange, "json"
    return None


async def contract_view(request: web.Request) -> web.Response:
    parsed = _contract_name(request.match_info["name"])
    if parsed is None or parsed[1] != "csv":
        raise web.HTTPNotFound()
    text = request.app[CORE].contract_file(parsed[0], "csv")
    return web.Response(text=text, content_type="text/csv")


async def contract_v2_view(request: web.Request) -> web.Response:
    parsed = _contract_name(request.match_info["name"])
    if parsed is None:
        raise web.HTTPNotFound()
    exchange, kind = parsed
    text = request.app[CORE].contract_file(exchange, kind)
    return web.Response(text=text, content_type="text/csv" if kind == "csv" else "application/json")


async def freeze_view(request: web.Request) -> web.Response:
    return web.Response(text=render_csv("FREEZE", []), content_type="text/csv")


def now_ist() -> datetime:
    return datetime.now(IST)
