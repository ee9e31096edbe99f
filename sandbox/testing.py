"""Test harness for the sandbox broker: start the real server and script it from tests,
benchmarks and other processes.

    from sandbox.testing import SandboxServer

    with SandboxServer() as sbx:                 # background thread, 127.0.0.1, port 0
        acct = sbx.create_account(funds=500000)  # AccountInfo(client_id, password, api_key, …)
        sbx.daily_login(acct.client_id)          # AliceBlue's daily sign-in
        sbx.url                                  # http://127.0.0.1:<port>, REST base of both APIs
        sbx.set_price("NSE", "INFY-EQ", "1500")
        sbx.orders(acct.client_id)               # snapshots for assertions

`SandboxServer(state_path=None, *, round_the_clock=True, seed=0, walk_interval=None,
heartbeat_timeout=75.0)` runs the server in a daemon thread with its own event loop and a
temporary state file (kept apart from any product database). `SandboxProcess(...)` has the
same interface but runs `python manage.py sandbox` in a subprocess (cross-process tests,
`bench/`), controlled over the token-protected control API. Every method is synchronous and
thread-safe; errors raise `SandboxError` with the sandbox's message.

Addresses
    url, ws_url                 base URLs (REST paths of both generations hang off url)
    login_url                   the vendor login page for the sandbox app (`/?appcode=…`)
    order_ws_url(generation)    g3: /open-api/order-notify/websocket, g2: /order-notify/websocket
    contract_url                …/restpy/static/contract_master
    state_path

Accounts and logins
    create_account(client_id=None, *, funds="1000000", push_enabled=True, password=None,
                   name=None, daily_login=False) -> AccountInfo
    account(client_id) -> AccountInfo; update_account(client_id, *, funds=None, push_enabled=None)
    vendor_app -> VendorAppInfo(app_code, api_secret, redirect_url); set_redirect_url(url)
    daily_login(client_id)      what signing in on the terminal/vendor page does
    auth_code(client_id) -> str what the vendor login page does (daily sign-in + fresh authCode)
    expire_sessions(client_id=None)   every API session of the account(s) answers EC087 / 401
    drop_websockets(client_id=None)   abort order-notify sockets (no close frame)

Faults, matching, dialects (see sandbox/options.py for the names)
    set_faults(client_id=None, **faults) / clear_faults(client_id=None)
        latency_ms, jitter_ms, error_rate, error_status, rate_limit_rate, order_timeout_rate,
        timeout_hold_ms, book_delay_ms, push_silent, push_disabled
    set_matching(client_id=None, partial_fill_qty=N) / clear_matching(client_id=None)
    set_dialect(**dialects) / reset_dialect()

Market, clock, matching
    set_price(exchange, symbol_or_token, price) -> Decimal; price(exchange, symbol_or_token)
    instrument(exchange, symbol_or_token) -> dict (token, lot_size, tick_size, freeze_qty, …)
    instruments(exchange) -> list[dict]
    walk(steps=1)               random-walk steps (seeded); set_walk(interval_seconds|None)
    step()                      one matching pass (continues partial fills)
    now() -> aware datetime; set_clock(aware dt); advance(seconds); reset_clock()
    set_round_the_clock(bool); set_holidays([date, …]); set_heartbeat_timeout(seconds)
    reset()                     defaults between tests (the `sandbox` fixture calls it)

Orders without HTTP (e.g. scripting the master's trades) and snapshots
    place_order(client_id, exchange, symbol_or_token, side, quantity, *, order_type="MARKET",
                product="MIS", price=None, trigger=None, validity="DAY", complexity="REGULAR",
                tag="") -> dict
    modify_order(client_id, order_no, *, quantity=None, order_type=None, price=None, trigger=None)
    cancel_order(client_id, order_no)
    orders(client_id) / trades(client_id) / positions(client_id) / funds(client_id)
    sockets(client_id=None) -> number of logged-in order-notify sockets

Pytest fixtures (import them in conftest.py: `from sandbox.testing import sandbox, sandbox_server`):
    sandbox_server   session-scoped SandboxServer
    sandbox          the same server, reset() before each test
    sandbox_account  a fresh account (own client id) already signed in for today
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sandbox.server import CONTROL_HEADER, CONTROL_PATH, ControlError

BASE_DIR = Path(__file__).resolve().parent.parent


class SandboxError(RuntimeError):
    pass


@dataclass(frozen=True)
class AccountInfo:
    client_id: str
    password: str
    api_key: str
    name: str
    funds: Decimal
    push_enabled: bool
    app_code: str
    api_secret: str
    redirect_url: str


@dataclass(frozen=True)
class VendorAppInfo:
    app_code: str
    api_secret: str
    redirect_url: str


def _account(data: dict[str, Any]) -> AccountInfo:
    return AccountInfo(
        client_id=data["client_id"],
        password=data["password"],
        api_key=data["api_key"],
        name=data["name"],
        funds=Decimal(data["funds"]),
        push_enabled=bool(data["push_enabled"]),
        app_code=data["app_code"],
        api_secret=data["api_secret"],
        redirect_url=data["redirect_url"],
    )


def _ensure_django() -> None:
    from django.conf import settings

    if not settings.configured:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "copytrade.settings")
        import django

        django.setup()


class _Control:
    url: str
    state_path: Path

    def _call(self, op: str, **args: Any) -> Any:
        raise NotImplementedError

    # addresses
    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)

    def order_ws_url(self, generation: str = "g3") -> str:
        path = (
            "/open-api/order-notify/websocket" if generation == "g3" else "/order-notify/websocket"
        )
        return self.ws_url + path

    @property
    def contract_url(self) -> str:
        return self.url + "/restpy/static/contract_master"

    @property
    def login_url(self) -> str:
        return f"{self.url}/?appcode={self.vendor_app.app_code}"

    # accounts
    def create_account(
        self,
        client_id: str | None = None,
        *,
        funds: Decimal | int | str = "1000000",
        push_enabled: bool = True,
        password: str | None = None,
        name: str | None = None,
        daily_login: bool = False,
    ) -> AccountInfo:
        info = _account(
            self._call(
                "create_account",
                client_id=client_id,
                funds=str(funds),
                password=password,
                name=name,
                push_enabled=push_enabled,
            )
        )
        if daily_login:
            self.daily_login(info.client_id)
        return info

    def account(self, client_id: str) -> AccountInfo:
        return _account(self._call("account", client_id=client_id))

    def update_account(
        self,
        client_id: str,
        *,
        funds: Decimal | int | str | None = None,
        push_enabled: bool | None = None,
    ) -> AccountInfo:
        return _account(
            self._call(
                "update_account",
                client_id=client_id,
                funds=str(funds) if funds is not None else None,
                push_enabled=push_enabled,
            )
        )

    @property
    def vendor_app(self) -> VendorAppInfo:
        return VendorAppInfo(**self._call("vendor_app"))

    def set_redirect_url(self, url: str) -> VendorAppInfo:
        return VendorAppInfo(**self._call("set_redirect_url", url=url))

    def daily_login(self, client_id: str) -> None:
        self._call("daily_login", client_id=client_id)

    def auth_code(self, client_id: str) -> str:
        return str(self._call("auth_code", client_id=client_id)["authCode"])

    def expire_sessions(self, client_id: str | None = None) -> int:
        return int(self._call("expire_sessions", client_id=client_id))

    def drop_websockets(self, client_id: str | None = None) -> int:
        return int(self._call("drop_websockets", client_id=client_id))

    # faults, matching, dialects
    def set_faults(self, client_id: str | None = None, **faults: Any) -> dict[str, Any]:
        return dict(self._call("set_faults", client_id=client_id, **faults))

    def clear_faults(self, client_id: str | None = None) -> None:
        self._call("clear_faults", client_id=client_id)

    def set_matching(self, client_id: str | None = None, **values: Any) -> dict[str, Any]:
        return dict(self._call("set_matching", client_id=client_id, **values))

    def clear_matching(self, client_id: str | None = None) -> None:
        self._call("clear_matching", client_id=client_id)

    def set_dialect(self, **values: Any) -> dict[str, str]:
        return dict(self._call("set_dialect", **values))

    def reset_dialect(self) -> dict[str, str]:
        return dict(self._call("reset_dialect"))

    # market, clock
    def set_price(self, exchange: str, symbol_or_token: str | int, price: Any) -> Decimal:
        return Decimal(
            self._call(
                "set_price",
                exchange=exchange,
                symbol_or_token=str(symbol_or_token),
                price=str(price),
            )
        )

    def price(self, exchange: str, symbol_or_token: str | int) -> Decimal:
        return Decimal(self._call("price", exchange=exchange, symbol_or_token=str(symbol_or_token)))

    def instrument(self, exchange: str, symbol_or_token: str | int) -> dict[str, Any]:
        return dict(
            self._call("instrument", exchange=exchange, symbol_or_token=str(symbol_or_token))
        )

    def instruments(self, exchange: str) -> list[dict[str, Any]]:
        return list(self._call("instruments", exchange=exchange))

    def walk(self, steps: int = 1) -> None:
        self._call("walk", steps=steps)

    def set_walk(self, interval: float | None) -> None:
        self._call("set_walk", interval=interval)

    def step(self) -> None:
        self._call("step")

    def now(self) -> datetime:
        return datetime.fromisoformat(self._call("now"))

    def set_clock(self, when: datetime) -> datetime:
        if when.tzinfo is None:
            raise ValueError("set_clock needs an aware datetime")
        return datetime.fromisoformat(self._call("set_clock", when=when.isoformat()))

    def advance(self, seconds: float) -> datetime:
        return datetime.fromisoformat(self._call("advance", seconds=seconds))

    def reset_clock(self) -> datetime:
        return datetime.fromisoformat(self._call("reset_clock"))

    def set_round_the_clock(self, enabled: bool) -> None:
        self._call("set_round_the_clock", enabled=enabled)

    def set_holidays(self, days: list[date]) -> None:
        self._call("set_holidays", days=[d.isoformat() for d in days])

    def set_heartbeat_timeout(self, seconds: float) -> None:
        self._call("set_heartbeat_timeout", seconds=seconds)

    def reset(self, *, round_the_clock: bool = True) -> None:
        self._call("reset", round_the_clock=round_the_clock)

    # orders
    def place_order(
        self,
        client_id: str,
        exchange: str,
        symbol_or_token: str | int,
        side: str,
        quantity: int,
        *,
        order_type: str = "MARKET",
        product: str = "MIS",
        price: Any = None,
        trigger: Any = None,
        validity: str = "DAY",
        complexity: str = "REGULAR",
        tag: str = "",
    ) -> dict[str, Any]:
        return dict(
            self._call(
                "place_order",
                client_id=client_id,
                exchange=exchange,
                symbol_or_token=str(symbol_or_token),
                side=side,
                quantity=quantity,
                order_type=order_type,
                product=product,
                price=None if price is None else str(price),
                trigger=None if trigger is None else str(trigger),
                validity=validity,
                complexity=complexity,
                tag=tag,
            )
        )

    def modify_order(
        self,
        client_id: str,
        order_no: str,
        *,
        quantity: int | None = None,
        order_type: str | None = None,
        price: Any = None,
        trigger: Any = None,
    ) -> dict[str, Any]:
        return dict(
            self._call(
                "modify_order",
                client_id=client_id,
                order_no=order_no,
                quantity=quantity,
                order_type=order_type,
                price=None if price is None else str(price),
                trigger=None if trigger is None else str(trigger),
            )
        )

    def cancel_order(self, client_id: str, order_no: str) -> dict[str, Any]:
        return dict(self._call("cancel_order", client_id=client_id, order_no=order_no))

    def orders(self, client_id: str) -> list[dict[str, Any]]:
        return list(self._call("orders", client_id=client_id))

    def trades(self, client_id: str) -> list[dict[str, Any]]:
        return list(self._call("trades", client_id=client_id))

    def positions(self, client_id: str) -> list[dict[str, Any]]:
        return list(self._call("positions", client_id=client_id))

    def funds(self, client_id: str) -> dict[str, Decimal]:
        return {k: Decimal(v) for k, v in self._call("funds", client_id=client_id).items()}

    def sockets(self, client_id: str | None = None) -> int:
        return int(self._call("sockets", client_id=client_id))

    def wait_for(self, predicate: Any, timeout: float = 5.0, interval: float = 0.02) -> Any:
        """Poll `predicate()` until it returns something truthy (for asynchronous effects)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise SandboxError(f"condition not met within {timeout:.1f}s")
            time.sleep(interval)


class SandboxServer(_Control):
    """The real sandbox server in a background thread (own event loop), on 127.0.0.1:0."""

    def __init__(
        self,
        state_path: str | Path | None = None,
        *,
        round_the_clock: bool = True,
        seed: int = 0,
        walk_interval: float | None = None,
        heartbeat_timeout: float = 75.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if state_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sandbox-")
            state_path = Path(self._tmp.name) / "sandbox.sqlite3"
        self.state_path = Path(state_path)
        self.options = {
            "round_the_clock": round_the_clock,
            "seed": seed,
            "walk_interval": walk_interval,
            "heartbeat_timeout": heartbeat_timeout,
        }
        self.host, self.port = host, port
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.running: Any = None
        self.url = ""

    def start(self) -> SandboxServer:
        from sandbox import runner

        _ensure_django()
        ready: Future[Any] = Future()
        self.loop = asyncio.new_event_loop()

        def run() -> None:
            assert self.loop is not None
            asyncio.set_event_loop(self.loop)
            try:
                self.running = self.loop.run_until_complete(
                    runner.start(self.state_path, host=self.host, port=self.port, **self.options)
                )
            except BaseException as exc:  # report start-up failures to the caller
                ready.set_exception(exc)
                return
            ready.set_result(self.running)
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, name="sandbox-server", daemon=True)
        self.thread.start()
        ready.result(timeout=30)
        self.port = self.running.port
        self.url = f"http://{self.host}:{self.port}"
        return self

    @property
    def core(self) -> Any:
        """The server's SandboxCore (only touch it through _call from other threads)."""
        return self.running.core

    def stop(self) -> None:
        if self.loop is None or self.running is None:
            return
        future = asyncio.run_coroutine_threadsafe(self.running.stop(), self.loop)
        try:
            future.result(timeout=15)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            assert self.thread is not None
            self.thread.join(timeout=15)
            self.loop.close()
            self.loop = None
            self.running = None
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    def _call(self, op: str, **args: Any) -> Any:
        if self.loop is None:
            raise SandboxError("the sandbox server is not running")

        async def run() -> Any:
            return self.running.core.control(op, args)

        try:
            return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)
        except ControlError as exc:
            raise SandboxError(str(exc)) from None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SandboxProcess(_Control):
    """`python manage.py sandbox` in a subprocess, controlled over HTTP (same interface)."""

    def __init__(
        self,
        state_path: str | Path | None = None,
        *,
        round_the_clock: bool = True,
        seed: int = 0,
        walk_interval: float | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        env: dict[str, str] | None = None,
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="sandbox-proc-")
        self.state_path = (
            Path(state_path) if state_path else Path(self._tmp.name) / "sandbox.sqlite3"
        )
        self.args = [
            "--host", host, "--port", str(port), "--state", str(self.state_path),
            "--seed", str(seed), "--walk-interval", str(walk_interval or 0),
        ]  # fmt: skip
        if round_the_clock:
            self.args.append("--round-the-clock")
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._token = ""

    def start(self, timeout: float = 60.0) -> SandboxProcess:
        ready = Path(self._tmp.name) / "ready.json"
        env = {**os.environ, **(self.env or {})}
        env.setdefault("DJANGO_SETTINGS_MODULE", "copytrade.settings")
        self.proc = subprocess.Popen(  # noqa: S603 - our own manage.py with fixed arguments
            [sys.executable, str(BASE_DIR / "manage.py"), "sandbox", *self.args,
             "--ready-file", str(ready)],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise SandboxError(f"sandbox process exited: {err[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise SandboxError("sandbox process did not start in time")
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        self.url = info["url"]
        from sandbox.store import Store

        store = Store(self.state_path)
        try:
            self._token = store.secret("control_token")
        finally:
            store.close()
        return self

    def _call(self, op: str, **args: Any) -> Any:
        request = urllib.request.Request(  # noqa: S310 - our own loopback server
            self.url + CONTROL_PATH,
            data=json.dumps({"op": op, "args": args}).encode(),
            headers={"Content-Type": "application/json", CONTROL_HEADER: self._token},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return json.loads(response.read())["result"]
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", str(exc))
            except ValueError:
                message = str(exc)
            raise SandboxError(message) from None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None
        self._tmp.cleanup()

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is a development dependency
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="session")
    def sandbox_server() -> Iterator[SandboxServer]:
        server = SandboxServer()
        server.start()
        try:
            yield server
        finally:
            server.stop()

    @pytest.fixture
    def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
        sandbox_server.reset()
        return sandbox_server

    @pytest.fixture
    def sandbox_account(sandbox: SandboxServer) -> AccountInfo:
        return sandbox.create_account(daily_login=True)
