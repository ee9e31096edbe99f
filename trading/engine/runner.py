"""The copier process: one asyncio event loop, the aiohttp AliceBlue client for every broker
call, and ONE database thread (`Db`) for every ORM call, with batched writes.

    copier = Copier(name="copier")
    await copier.run()          # until stop() (SIGTERM): drains in-flight sends, exits clean
    await copier.tick()         # one pass (manage.py copier --once; tests)

What runs (each a small loop over the step functions in `steps`, `decide`, `sender`,
`tracking`):

* **refresh** — every few seconds: re-read accounts and today's sessions; (re)build one
  `AsyncAliceBlueClient` per account (one pooled connection set each); start or stop each
  master's watch and each follower's tracking.
* **master watch** (per master with a ready session) — the order-notify push and, beside it,
  a budgeted poll of the order book (fast while the push is down, silent or unreadable, slow
  while it is healthy, once on every (re)connect). Both feed one queue that is processed in
  order: `steps.changes` (read-only) → a quote if a market order must be valued →
  `decide.record_observation` (one transaction) → dispatch the PENDING rows.
* **sender** — claim (`sender.claim`) → per-account, per-exchange rate governor → send, all
  rows concurrently (one slow follower never delays the others) → classify → the batched
  `OutcomeWriter`. Ambiguous sends are looked up by tag over ~10 s, never resent.
* **follower tracking** (per account with open copies) — push + budgeted poll →
  `tracking.apply_follower_rows` (fill progress, ledger, later rejections).
* **sweeper** — PENDING rows nobody claimed (a crash after the decision, another copier's
  rows), due retries and waiting exits, SENDING rows whose copier died (resolved by tag),
  manual copy trades to plan.
* **P&L** — each follower account's position book within its budget, for the daily-loss check.
* **heartbeat** — `CopierHeartbeat` with what it is connected to (`/healthz` shows it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import itertools
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from django.db import (
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    connections,
)

from copytrade.lib import budget as budget_math
from copytrade.lib import clock
from copytrade.lib.ratelimit import AsyncRateGovernor, WaitTooLong
from trading.brokers.aliceblue import budget as persisted_budget
from trading.brokers.aliceblue.client import AsyncAliceBlueClient
from trading.brokers.aliceblue.errors import (
    BrokerError,
    BudgetExhausted,
    NeedsDailyLogin,
    SessionExpired,
)
from trading.brokers.aliceblue.push import (
    FeedState,
    FeedStateChange,
    OrderEvent,
    OrderFeed,
    UnknownFrame,
)
from trading.brokers.aliceblue.transport import AsyncTransport
from trading.brokers.aliceblue.types import OrderRow
from trading.engine import decide, faults, jobs, pnl, sender, steps, tracking
from trading.engine.config import CopierConfig
from trading.engine.lifecycle import logins
from trading.engine.reasons import Reason
from trading.engine.sender import Claimed, Outcome
from trading.models import CopyTrade

logger = logging.getLogger("trading.engine.copier")
#: How long a quote values market orders of the same instrument (seconds).
QUOTE_TTL = 30.0
T = TypeVar("T")
Status = CopyTrade.Status


# --- The database thread ----------------------------------------------------------------------
class Db:
    """Every ORM call of the copier runs in this one thread: ``await db(fn, *args)``.

    Calls run one at a time in priority order, then in order of arrival: ``db.urgent(...)``
    (detection → decision → claim, the path a follower order waits on) goes ahead of
    everything queued with ``db(...)`` (tracking, P&L, budgets, heartbeats), so a burst of
    follower order updates never delays the next master order's copies."""

    URGENT = 0
    NORMAL = 1
    _CLOSE = 9  # after everything queued

    def __init__(self) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="copier-db_0", daemon=True)
        self._thread.start()

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self._submit(self.NORMAL, fn, args, kwargs)

    async def urgent(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self._submit(self.URGENT, fn, args, kwargs)

    async def _submit(
        self, priority: int, fn: Callable[..., T], args: Any, kwargs: dict[str, Any]
    ) -> T:
        if self._closed:  # nothing would ever run it: fail now instead of waiting for ever
            raise RuntimeError("the copier's database thread is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        call = functools.partial(_guarded, fn, *args, **kwargs)
        self._queue.put((priority, next(self._seq), (call, future, loop)))
        return await future

    def _work(self) -> None:
        while True:
            _priority, _seq, item = self._queue.get()
            if item is None:
                return
            call, future, loop = item
            if future.cancelled():
                continue
            try:
                result = call()
            except BaseException as exc:  # handed to the awaiting coroutine
                _settle(loop, future, exc=exc)
            else:
                _settle(loop, future, result=result)

    def close(self) -> None:
        """Close this thread's database connection, then the thread (after queued work)."""
        self._closed = True
        done = threading.Event()

        def close_own() -> None:
            # runs in the worker thread: Django connections are per thread
            try:
                connections.close_all()
            finally:
                done.set()

        if self._thread.is_alive():
            self._queue.put((self._CLOSE, next(self._seq), None))
            self._queue.put((self._CLOSE - 1, next(self._seq), (close_own, _NoFuture(), None)))
            done.wait(timeout=10)
            self._thread.join(timeout=10)


class _NoFuture:
    """A call nobody awaits (closing the thread's connection)."""

    def cancelled(self) -> bool:
        return False


def _settle(
    loop: asyncio.AbstractEventLoop | None,
    future: Any,
    *,
    result: Any = None,
    exc: BaseException | None = None,
) -> None:
    if loop is None or loop.is_closed():
        return

    def settle() -> None:
        if future.done():
            return  # the awaiting task was cancelled meanwhile
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
        loop.call_soon_threadsafe(settle)


def _guarded(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return fn(*args, **kwargs)
    except (OperationalError, InterfaceError):
        # a dropped connection (PostgreSQL restart) or a lock timeout: start afresh next time
        close_old_connections()
        with contextlib.suppress(Exception):
            connection.close()
        raise


class EngineBudget:
    """The account's persisted request budget, consumed through the copier's DB thread."""

    def __init__(self, account_id: int, db: Db) -> None:
        self.account_id = account_id
        self.db = db

    def consume(self, op: str) -> int:
        return persisted_budget.consume(self.account_id, 1, op=op)

    async def aconsume(self, op: str) -> int:
        return await self.db(persisted_budget.consume, self.account_id, 1, op=op)


# --- Batched outcome writes -------------------------------------------------------------------
class OutcomeWriter:
    """Collects send outcomes for a few milliseconds (or up to a batch) and writes each batch
    in one transaction (`sender.record_outcomes`)."""

    def __init__(self, db: Db, *, batch: int = 500, delay: float = 0.005) -> None:
        self.db = db
        self.batch = batch
        self.delay = delay
        self._pending: list[Outcome] = []
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.written = 0
        self.listeners: list[Callable[[list[Outcome]], None]] = []

    def put(self, outcome: Outcome) -> None:
        self._pending.append(outcome)
        self._idle.clear()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="outcome-writer")

    async def _run(self) -> None:
        try:
            while self._pending:
                if len(self._pending) < self.batch:
                    await asyncio.sleep(self.delay)
                batch, self._pending = self._pending[: self.batch], self._pending[self.batch :]
                try:
                    await self.db(sender.record_outcomes, batch)
                except Exception:
                    logger.exception("writing send outcomes failed; retrying")
                    self._pending = batch + self._pending
                    await asyncio.sleep(0.5)
                    continue
                self.written += len(batch)
                if any(o.status == Status.SUCCESS for o in batch):
                    faults.kill_point("after_ack")
                for listener in self.listeners:
                    listener(batch)
        finally:
            if not self._pending:
                self._idle.set()

    async def drain(self) -> None:
        while self._pending or (self._task is not None and not self._task.done()):
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._run())
            await self._idle.wait()
            await asyncio.sleep(0)


#: Seconds a hand trade waits before its account is reconciled (a burst of fills goes as one).
HAND_TRADE_DELAY = 0.2


class TrackingWriter:
    """Collects follower order updates (push frames) for a few milliseconds and applies each
    batch in one transaction (`tracking.apply_follower_batch`): a fan-out to N followers
    brings N or more frames at once, and one commit for them all keeps the database thread
    free for the next master order. A failed batch asks those accounts' polls to run now."""

    def __init__(self, db: Db, *, delay: float = 0.02, batch: int = 1000) -> None:
        self.db = db
        self.delay = delay
        self.batch = batch
        self._pending: list[tuple[Watch, OrderRow]] = []
        self._task: asyncio.Task[None] | None = None
        self.listeners: list[Callable[[tracking.TrackResult], None]] = []

    def put(self, watch: Watch, row: OrderRow) -> None:
        self._pending.append((watch, row))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="tracking-writer")

    async def _run(self) -> None:
        while self._pending:
            if len(self._pending) < self.batch:
                await asyncio.sleep(self.delay)
            batch, self._pending = self._pending[: self.batch], self._pending[self.batch :]
            try:
                result = await self.db(
                    tracking.apply_follower_batch,
                    [(watch.account_id, [row]) for watch, row in batch],
                )
            except Exception:
                logger.exception("tracking follower orders failed; polling those accounts")
                for watch, _row in batch:
                    watch.poll_now.set()
                continue
            for listener in self.listeners:
                listener(result)

    async def drain(self) -> None:
        while self._pending or (self._task is not None and not self._task.done()):
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._run(), name="tracking-writer")
            await asyncio.wait({self._task})


# --- Watches ----------------------------------------------------------------------------------
@dataclass
class Watch:
    """One account's feeds: a master's order feed, or a follower's order tracking."""

    account_id: int
    client: AsyncAliceBlueClient
    master_id: int | None = None
    follower_id: int | None = None
    push_state: str = "connecting"
    push_changed_at: datetime | None = None
    last_poll_at: datetime | None = None
    last_event_at: datetime | None = None
    last_open_at: float = field(default_factory=time.monotonic)
    unhealthy_until: float = 0.0
    poll_now: asyncio.Event = field(default_factory=asyncio.Event)
    queue: asyncio.Queue[tuple[list[OrderRow], str, datetime]] = field(
        default_factory=asyncio.Queue
    )
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    feed: OrderFeed | None = None
    baseline_done: bool = False

    @property
    def push_healthy(self) -> bool:
        return self.push_state == FeedState.CONNECTED and time.monotonic() >= self.unhealthy_until

    def describe(self) -> dict[str, Any]:
        return {
            "push": self.push_state,
            "last_poll": self.last_poll_at.isoformat() if self.last_poll_at else None,
            "last_event": self.last_event_at.isoformat() if self.last_event_at else None,
        }

    async def stop(self) -> None:
        if self.feed is not None:
            self.feed.stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()


@dataclass
class ClientEntry:
    client: AsyncAliceBlueClient
    fingerprint: str


def usable(row: OrderRow) -> bool:
    """A push row complete enough to decide on (else the order book is polled at once)."""
    return bool(
        row.broker_order_id
        and row.side is not None
        and row.order_type is not None
        and row.exchange
        and row.trading_symbol
        and row.quantity > 0
    )


# --- The copier -------------------------------------------------------------------------------
class Copier:
    def __init__(
        self,
        *,
        name: str = "copier",
        config: CopierConfig | None = None,
        governor: AsyncRateGovernor | None = None,
    ) -> None:
        self.name = name
        self.run_id = f"{name}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        self.config = config or CopierConfig.from_settings()
        self.db = Db()
        self.governor = governor or AsyncRateGovernor()
        self.writer: OutcomeWriter | None = None
        self.tracker = TrackingWriter(self.db)
        self.tracker.listeners.append(self.hand_trades)
        #: Hand trades seen today ((account, order) -> filled) and accounts to reconcile now.
        self._hand_seen: dict[tuple[int, str], int] = {}
        self._hand_day = clock.today_ist()
        self._hand_accounts: set[int] = set()
        self._hand_task: asyncio.Task[Any] | None = None
        self.clients: dict[int, ClientEntry] = {}
        self.accounts: dict[int, steps.AccountState] = {}
        self.masters: dict[int, Watch] = {}
        self.followers: dict[int, Watch] = {}
        self.started_at = clock.now()
        self.stopping = asyncio.Event() if _has_loop() else None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sends: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[Any]] = []
        self._last_pnl: dict[int, float] = {}
        self._last_adopt = 0.0
        self._contracts_retry: dict[str, float] = {}
        self._quotes: dict[tuple[str, str], tuple[Decimal, float]] = {}
        self._login_next: dict[int, float] = {}
        self._login_wait: dict[int, float] = {}
        self._relogin_locks: dict[int, asyncio.Lock] = {}
        #: Clients of sessions that ended, closed a little later (calls in flight finish).
        self._retired: dict[AsyncAliceBlueClient, asyncio.Task[None]] = {}
        self._lots: Any = None
        self.sent = 0
        self.errors = 0

    # --- lifecycle ---------------------------------------------------------------------------
    async def __aenter__(self) -> Copier:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self.stopping is None:
            self.stopping = asyncio.Event()
        self.writer = OutcomeWriter(
            self.db, batch=self.config.write_batch, delay=self.config.write_delay
        )
        self.writer.listeners.append(self._after_write)
        await self._heartbeat()
        _settle_memory()
        logger.info("copier started", extra={"ctx": {"run": self.run_id}})

    async def run(self) -> None:
        """Run until `stop()`; then finish in-flight work and close."""
        await self.start()
        assert self.stopping is not None
        await self.refresh()
        await self._adopt_orphans()
        self._loops = [
            asyncio.create_task(self._every(self.config.refresh, self.refresh), name="refresh"),
            asyncio.create_task(self._every(self.config.sweep, self.sweep), name="sweep"),
            asyncio.create_task(
                self._every(self.config.heartbeat, self._heartbeat), name="heartbeat"
            ),
        ]
        if self.config.pnl_refresh > 0:
            self._loops.append(asyncio.create_task(self._every(5.0, self.refresh_pnl), name="pnl"))
        if self.config.contracts:
            self._loops.append(
                asyncio.create_task(self._every(60.0, self.refresh_contracts), name="contracts")
            )
        for job in jobs.registered():
            self._loops.append(
                asyncio.create_task(
                    self._every(job.every(self.config), functools.partial(job.run, self)),
                    name=job.name,
                )
            )
        try:
            await self.stopping.wait()
        finally:
            await self.close()

    def stop(self) -> None:
        """Stop taking new work (thread-safe through loop.call_soon_threadsafe)."""
        if self.stopping is not None:
            self.stopping.set()

    async def close(self) -> None:
        """Stop feeds and loops, finish in-flight sends and their writes, close clients."""
        if self.stopping is not None:
            self.stopping.set()
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loops.clear()
        for watch in [*self.masters.values(), *self.followers.values()]:
            await watch.stop()
        await self.drain(timeout=self.config.drain_timeout)
        with contextlib.suppress(Exception):
            await self._heartbeat(stopped=True)
        for entry in self.clients.values():
            await _close_client(entry.client)
        self.clients.clear()
        for client, task in list(self._retired.items()):
            task.cancel()
            await _close_client(client)
        self._retired.clear()
        self.masters.clear()
        self.followers.clear()
        await asyncio.sleep(0)
        self.db.close()
        logger.info("copier stopped", extra={"ctx": {"run": self.run_id, "sent": self.sent}})

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for in-flight sends (and their ambiguous look-ups) and their writes."""
        deadline = time.monotonic() + timeout
        while self._sends or self._tasks:
            pending = [*self._sends, *self._tasks]
            left = deadline - time.monotonic()
            if left <= 0:
                logger.error("in-flight sends did not finish in time; the restart reconciles")
                break
            await asyncio.wait(pending, timeout=left)
        if self.writer is not None:
            await self.writer.drain()
        await self.tracker.drain()

    async def _every(self, seconds: float, step: Callable[[], Awaitable[Any]]) -> None:
        assert self.stopping is not None
        while not self.stopping.is_set():
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.errors += 1
                name = getattr(step, "__name__", None) or getattr(
                    getattr(step, "func", None), "__name__", step
                )
                logger.exception("copier step %s failed", name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=seconds)

    def _spawn(self, coro: Awaitable[Any], *, send: bool = False, name: str = "") -> None:
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        bucket = self._sends if send else self._tasks
        bucket.add(task)
        task.add_done_callback(bucket.discard)
        task.add_done_callback(_log_failure)

    # --- one pass (--once, tests) ----------------------------------------------------------
    async def tick(self, *, track: bool = True) -> None:
        """One pass of everything: refresh, poll every master once (baseline first), sweep,
        wait for the sends, poll followers with open copies once, heartbeat."""
        if self.writer is None:
            await self.start()
        await self.refresh(start_watches=False)
        await self._adopt_orphans()
        if self.config.pnl_refresh > 0:
            await self.refresh_pnl()
        for master_id, state in list(self._master_accounts().items()):
            client = self._client(state.account_id)
            if client is None:
                continue
            watch = self.masters.get(master_id) or Watch(state.account_id, client, master_id)
            self.masters[master_id] = watch
            try:
                await self.poll_master(watch)
            except SessionExpired:
                continue  # session_lost runs (spawned); the next pass polls the new session
            await self._process_queue(watch)
        await self.sweep()
        await self.drain(timeout=self.config.drain_timeout)
        for job in jobs.registered():
            if job.in_tick:
                await job.run(self)
        await self.drain(timeout=self.config.drain_timeout)
        if track and self.config.track_followers:
            for account_id in await self.db(steps.open_tracking_accounts):
                client = self._client(account_id)
                if client is None:
                    continue
                watch = self.followers.get(account_id) or Watch(account_id, client)
                self.followers[account_id] = watch
                try:
                    await self.poll_follower(watch)
                except SessionExpired as exc:
                    self._spawn(self.session_lost(account_id, str(exc), client))
            await self.drain(timeout=self.config.drain_timeout)
        await self._heartbeat()

    # --- accounts, clients, watches -------------------------------------------------------------
    def _master_accounts(self) -> dict[int, steps.AccountState]:
        return {
            s.own_master_id: s
            for s in self.accounts.values()
            if s.own_master_id is not None and s.session is not None
        }

    def _client(self, account_id: int | None) -> AsyncAliceBlueClient | None:
        if account_id is None:
            return None
        entry = self.clients.get(account_id)
        return entry.client if entry is not None else None

    async def refresh(self, *, start_watches: bool = True) -> None:
        """Re-read accounts and sessions; rebuild clients whose session changed."""
        states = await self.db(steps.load_accounts)
        seen = set()
        added: list[int] = []
        created = len(self.clients)
        for state in states:
            seen.add(state.account_id)
            self.accounts[state.account_id] = state
            entry = self.clients.get(state.account_id)
            if state.session is None:
                if entry is not None:
                    await self._drop_client(state.account_id)
                continue
            if entry is not None and entry.fingerprint == state.fingerprint:
                continue
            if entry is not None:
                await self._drop_client(state.account_id)
            await self._add_client(state)
            added.append(state.account_id)
        if added:
            # exits that waited for these accounts' logins are due now
            await self.db(logins.release_waiting, added, clock.now())
        for account_id in list(self.clients):
            if account_id not in seen:
                await self._drop_client(account_id)
        for account_id in list(self.accounts):
            if account_id not in seen:
                del self.accounts[account_id]
        await self._auto_logins(states)
        if start_watches:
            await self._reconcile_watches()
        if len(self.clients) - created > 50:
            _settle_memory()  # many new clients (start-up, the morning's logins)

    async def _auto_logins(self, states: list[steps.AccountState]) -> None:
        """API-key accounts without today's session log in by themselves once their owner
        has signed in to AliceBlue today (the broker says "not logged in" until then). The
        attempts back off per account: 15 s, doubling, up to 30 s for a master's own
        account (few, and copying waits for it) and 5 minutes for followers'."""
        now = time.monotonic()
        due = [
            s.account_id
            for s in states
            if s.session is None and now >= self._login_next.get(s.account_id, 0.0)
        ]
        if not due:
            return
        candidates = await self.db(steps.login_candidates, due)
        masters = {s.account_id for s in states if s.own_master_id is not None}
        for candidate in candidates:
            cap = 30.0 if candidate.account_id in masters else 300.0
            wait = self._login_wait.get(candidate.account_id, 15.0)
            self._login_next[candidate.account_id] = now + wait
            self._login_wait[candidate.account_id] = min(wait * 2, cap)
        if candidates:
            done = await asyncio.gather(*(self._login(c) for c in candidates))
            if any(done):
                await self.refresh_sessions_only()

    async def _login(self, candidate: steps.LoginCandidate) -> bool:
        from trading.brokers.aliceblue import protocol
        from trading.brokers.aliceblue.protocol import Endpoints

        endpoints = Endpoints.from_settings()
        transport = AsyncTransport(pool_size=1)
        try:
            enc_key = await transport.run(
                protocol.ant_enc_key_call(endpoints, user_id=candidate.client_id)
            )
            grant = await transport.run(
                protocol.ant_session_call(
                    endpoints,
                    user_id=candidate.client_id,
                    api_key=candidate.api_key,
                    enc_key=enc_key,
                )
            )
        except BrokerError as exc:
            logger.info(
                "automatic API-key login not possible yet",
                extra={"ctx": {"account": candidate.account_id, "why": exc.message[:120]}},
            )
            if isinstance(exc, NeedsDailyLogin):
                # a session that ended today now needs its owner's sign-in: say so, once
                await self.db(logins.login_refused, candidate.account_id, exc.message, clock.now())
            return False
        finally:
            await transport.close()
        await self.db(steps.store_login, candidate.account_id, grant)
        self._login_wait.pop(candidate.account_id, None)
        self._login_next.pop(candidate.account_id, None)
        logger.info("logged in with the API key", extra={"ctx": {"account": candidate.account_id}})
        return True

    async def session_lost(
        self, account_id: int, detail: str, failed: AsyncAliceBlueClient | None = None
    ) -> AsyncAliceBlueClient | None:
        """A call with this account's session got EC087 / HTTP 401 (`failed` is the client
        that got it): expire that session and, for an API-key account, log in again at once.
        Returns a client with the new session, or None (the account needs today's login: its
        entries are skipped and its exits wait). Concurrent failures of one account share one
        attempt. Never call it from a watch's own task (it stops the account's watches):
        spawn it there."""
        lock = self._relogin_locks.setdefault(account_id, asyncio.Lock())
        async with lock:
            current = self._client(account_id)
            if current is not None and failed is not None and current is not failed:
                return current  # another call already logged in again
            if current is None and time.monotonic() < self._login_next.get(account_id, 0.0):
                return None  # a login was just refused: the back-off decides the next try
            obtained_at = failed.session.obtained_at if failed is not None else None
            auto = await self.db(logins.session_lost, account_id, detail, obtained_at, clock.now())
            await self._retire_client(account_id)
            if not auto:
                return None
            candidates = await self.db(steps.login_candidates, [account_id])
            if not candidates or not await self._login(candidates[0]):
                self._login_next[account_id] = time.monotonic() + 15.0
                return None
            await self.refresh_sessions_only()
            return self._client(account_id)

    async def _retire_client(self, account_id: int) -> None:
        """Stop the account's watches and forget its client; its connections close a little
        later (calls in flight on it finish and are classified as usual)."""
        for watches in (self.masters, self.followers):
            for key, watch in list(watches.items()):
                if watch.account_id == account_id:
                    del watches[key]
                    self._spawn(watch.stop(), name=f"stop-watch-{account_id}")
        entry = self.clients.pop(account_id, None)
        if entry is not None:
            old = entry.client

            async def close_later() -> None:
                await asyncio.sleep(self.config.drain_timeout)
                self._retired.pop(old, None)
                await _close_client(old)

            self._retired[old] = asyncio.create_task(close_later(), name="close-client")

    async def refresh_sessions_only(self) -> None:
        """Pick up sessions just stored (no new logins, no watch changes)."""
        states = await self.db(steps.load_accounts)
        added = []
        for state in states:
            self.accounts[state.account_id] = state
            if state.session is not None and state.account_id not in self.clients:
                await self._add_client(state)
                added.append(state.account_id)
        if added:
            await self.db(logins.release_waiting, added, clock.now())

    async def _add_client(self, state: steps.AccountState) -> None:
        assert state.session is not None
        if self._lots is None:
            from trading.brokers.instruments import mcx_lot_table

            self._lots = await self.db(mcx_lot_table)
        client = AsyncAliceBlueClient(
            state.session,
            transport=AsyncTransport(pool_size=8),
            budget=EngineBudget(state.account_id, self.db),
            on_session_expired=None,
            lots=self._lots,
        )
        self.clients[state.account_id] = ClientEntry(client, state.fingerprint)

    async def _drop_client(self, account_id: int) -> None:
        for watches in (self.masters, self.followers):
            for key, watch in list(watches.items()):
                if watch.account_id == account_id:
                    await watch.stop()
                    del watches[key]
        entry = self.clients.pop(account_id, None)
        if entry is not None:
            await _close_client(entry.client)

    async def _reconcile_watches(self) -> None:
        assert self.stopping is not None
        if self.stopping.is_set():
            return
        wanted = self._master_accounts()
        for master_id, state in wanted.items():
            watch = self.masters.get(master_id)
            client = self._client(state.account_id)
            if client is None:
                continue
            if watch is None or watch.client is not client:
                if watch is not None:
                    await watch.stop()
                watch = Watch(state.account_id, client, master_id=master_id)
                self.masters[master_id] = watch
                watch.tasks = [
                    asyncio.create_task(self._master_feed(watch), name=f"feed-m{master_id}"),
                    asyncio.create_task(self._master_poll(watch), name=f"poll-m{master_id}"),
                    asyncio.create_task(self._master_queue(watch), name=f"queue-m{master_id}"),
                ]
        for master_id in list(self.masters):
            if master_id not in wanted:
                await self.masters.pop(master_id).stop()
                await self.db(steps.set_feed, master_id, push_state="needs_login")
        if self.config.track_followers:
            accounts = set(await self.db(steps.open_tracking_accounts))
            for account_id in accounts:
                self.track(account_id)
            now = time.monotonic()
            for account_id, watch in list(self.followers.items()):
                if account_id in accounts:
                    watch.last_open_at = now
                elif now - watch.last_open_at > self.config.follower_idle:
                    await self.followers.pop(account_id).stop()

    def track(self, account_id: int | None) -> None:
        """Start tracking a follower account's orders (push + poll) if not already."""
        if account_id is None or not self.config.track_followers:
            return
        if self.stopping is None or self.stopping.is_set():
            return
        watch = self.followers.get(account_id)
        if watch is not None:
            watch.last_open_at = time.monotonic()
            return
        client = self._client(account_id)
        if client is None:
            return
        watch = Watch(account_id, client)
        self.followers[account_id] = watch
        watch.tasks = [
            asyncio.create_task(self._follower_feed(watch), name=f"feed-a{account_id}"),
            asyncio.create_task(self._follower_poll(watch), name=f"poll-a{account_id}"),
        ]

    # --- master detection --------------------------------------------------------------------
    async def _master_feed(self, watch: Watch) -> None:
        feed = OrderFeed(watch.client, silent_after=self.config.push_silent)
        watch.feed = feed
        async for event in feed.events():
            if isinstance(event, OrderEvent):
                watch.last_event_at = event.received_at
                if usable(event.row):
                    watch.queue.put_nowait(([event.row], "push", event.received_at))
                else:
                    watch.poll_now.set()
            elif isinstance(event, UnknownFrame):
                watch.unhealthy_until = time.monotonic() + 60
                watch.poll_now.set()
                logger.warning(
                    "unknown frame on the master's order feed",
                    extra={"ctx": {"master": watch.master_id, "frame": event.raw[:120]}},
                )
            elif isinstance(event, FeedStateChange):
                await self._feed_state(watch, event)
        watch.feed = None

    async def _feed_state(self, watch: Watch, event: FeedStateChange) -> None:
        watch.push_state = event.state.value
        watch.push_changed_at = event.at
        # once on every (re)connect (repair any gap), and at once when the push goes down or
        # silent (the poller then runs at its fast interval)
        watch.poll_now.set()
        if event.state == FeedState.SESSION_EXPIRED:
            self._spawn(
                self.session_lost(watch.account_id, event.detail, watch.client),
                name=f"session-lost-{watch.account_id}",
            )
        if watch.master_id is not None:
            with contextlib.suppress(Exception):
                await self.db(
                    steps.set_feed,
                    watch.master_id,
                    push_state=event.state.value,
                    push_changed_at=event.at,
                    last_error=event.detail[:300],
                    copier=self.name,
                )

    async def _interval(self, watch: Watch, fast: float, slow: float) -> float:
        remaining = await self.db(persisted_budget.remaining, watch.account_id)
        return budget_math.poll_interval(
            remaining=remaining,
            now=clock.now(),
            push_healthy=watch.push_healthy,
            floor=fast,
            ceiling=slow,
            reserve=self.config.budget_reserve,
        )

    async def _wait_poll(self, watch: Watch, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch.poll_now.wait(), timeout=seconds)
        watch.poll_now.clear()

    async def _master_poll(self, watch: Watch) -> None:
        assert self.stopping is not None
        while not self.stopping.is_set():
            try:
                await self.poll_master(watch)
                seconds = await self._interval(watch, self.config.poll_fast, self.config.poll_slow)
            except asyncio.CancelledError:
                raise
            except BudgetExhausted as exc:
                seconds = max((exc.retry_at - clock.now()).total_seconds(), 1.0)
            except Exception:
                logger.exception("master poll failed", extra={"ctx": {"master": watch.master_id}})
                seconds = self.config.poll_fast
            await self._wait_poll(watch, seconds)

    async def poll_master(self, watch: Watch) -> None:
        """One poll of the master's order book (the first of the day takes the baseline)."""
        assert watch.master_id is not None
        if not watch.baseline_done:
            day = await self.db(steps.feed_baseline_day, watch.master_id)
            if day != clock.today_ist():
                await self._baseline(watch)
                watch.baseline_done = True
                return
            watch.baseline_done = True
        try:
            rows = await watch.client.order_book()
        except SessionExpired as exc:
            # (spawned: it stops this account's watches, which may be the caller's own task)
            self._spawn(
                self.session_lost(watch.account_id, str(exc), watch.client),
                name=f"session-lost-{watch.account_id}",
            )
            raise
        received_at = clock.now()
        watch.last_poll_at = received_at
        watch.queue.put_nowait((rows, "poll", received_at))

    async def _baseline(self, watch: Watch) -> None:
        """Book → positions → book until the two books agree on fills, then seed."""
        assert watch.master_id is not None
        for _attempt in range(3):
            first = await watch.client.order_book()
            positions = await watch.client.positions()
            book = await watch.client.order_book()
            if {(r.broker_order_id, r.filled_quantity) for r in first} == {
                (r.broker_order_id, r.filled_quantity) for r in book
            }:
                break
        received_at = clock.now()
        watch.last_poll_at = received_at
        recorded = await self.db(
            steps.take_baseline,
            watch.master_id,
            positions=positions,
            book=book,
            received_at=received_at,
            copier=self.name,
        )
        logger.info(
            "master baseline taken",
            extra={
                "ctx": {
                    "master": watch.master_id,
                    "orders": len(book),
                    "copied": len(recorded.pending_ids),
                }
            },
        )
        self._dispatch(recorded.pending_ids)

    async def _master_queue(self, watch: Watch) -> None:
        while True:
            await self._process_queue(watch, wait=True)

    async def _process_queue(self, watch: Watch, *, wait: bool = False) -> None:
        """Record queued observations in arrival order (one master at a time)."""
        while True:
            if wait:
                item = await watch.queue.get()
                wait = False
            else:
                try:
                    item = watch.queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
            rows, source, received_at = item
            try:
                await self.observe(watch, rows, source, received_at)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.errors += 1
                logger.exception(
                    "recording master orders failed; the next poll retries",
                    extra={"ctx": {"master": watch.master_id, "source": source}},
                )
                watch.poll_now.set()

    async def observe(
        self, watch: Watch, rows: list[OrderRow], source: str, received_at: datetime
    ) -> decide.Recorded:
        """Detect → decide (one transaction per order) → claim → send, with one trip to the
        database thread; a market order to value first gets a quote (outside it)."""
        assert watch.master_id is not None
        claimer = sender.new_claimer(self.run_id)
        observed = await self.db.urgent(
            steps.observe,
            watch.master_id,
            rows,
            source=source,
            received_at=received_at,
            claimer=claimer,
        )
        total = observed.recorded
        self._start_sends(observed.claimed)
        if observed.need_quote:
            quotes = {}
            for row in observed.need_quote:
                quote = await self._quote(watch.client, row.exchange, row.token)
                if quote is not None:
                    quotes[row.broker_order_id] = quote
            again = await self.db.urgent(
                steps.observe,
                watch.master_id,
                observed.need_quote,
                source=source,
                received_at=received_at,
                claimer=claimer,
                quotes={
                    row.broker_order_id: quotes.get(row.broker_order_id)
                    for row in observed.need_quote
                },
            )
            total.extend(again.recorded)
            self._start_sends(again.claimed)
        if total.event_ids:
            watch.last_event_at = received_at
        return total

    async def _quote(
        self, client: AsyncAliceBlueClient, exchange: str, token: str
    ) -> Decimal | None:
        """The last traded price, for the max-order-value check of a market order: from a
        quote at most QUOTE_TTL old (a limit check, not a price to trade at), else fetched
        through the master's session (within its request budget)."""
        key = (exchange, token)
        cached = self._quotes.get(key)
        if cached is not None and time.monotonic() - cached[1] < QUOTE_TTL:
            return cached[0]
        try:
            ltp = (await client.quote(exchange, token)).ltp
            self._quotes[key] = (ltp, time.monotonic())
            return ltp
        except BrokerError as exc:
            logger.warning(
                "quote failed; market order value unknown",
                extra={"ctx": {"exchange": exchange, "token": token, "error": str(exc)}},
            )
            return None

    # --- sending -----------------------------------------------------------------------------
    def _dispatch(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if ids:
            self._spawn(self.send_batch(ids), send=True, name="send-batch")

    async def send_batch(self, ids: list[int]) -> None:
        """Claim these rows and send every claimed one concurrently (exits first)."""
        claimer = sender.new_claimer(self.run_id)
        result = await self.db.urgent(sender.claim, ids, claimer=claimer)
        self._start_sends(result.claimed)

    def _start_sends(self, claimed: list[Claimed]) -> None:
        """Send every claimed row concurrently, exits first."""
        if not claimed:
            return
        faults.kill_point("after_claim")
        for c in sorted(claimed, key=lambda c: c.intent != sender.EXIT):
            self._spawn(self._send_one(c), send=True)

    async def _send_one(self, c: Claimed) -> None:
        assert self.writer is not None
        client = self._client(c.account_id)
        if client is None:
            self.writer.put(
                sender.classify(
                    c, NeedsDailyLogin("no ready session today"), sent_at=None, now=clock.now()
                )
            )
            return
        deadline = c.deadline
        max_wait = None
        if deadline is not None:
            max_wait = max((deadline - clock.now()).total_seconds(), 0.0)
        try:
            await self.governor.acquire((c.account_id, c.exchange), max_wait=max_wait)
        except WaitTooLong:
            self.writer.put(sender.expired(c, "the rate governor had no slot in time"))
            return
        if deadline is not None and clock.now() > deadline:
            self.writer.put(sender.expired(c, ""))
            return
        action_sender = None
        if c.action != CopyTrade.Action.PLACE:
            action_sender = sender.ACTION_SENDERS.get(c.action)
            if action_sender is None:
                text = sender.NO_ACTION_SENDER.format(action=c.action)
                self.writer.put(Outcome(c, Status.FAILED, Reason.INVALID_ORDER, text))
                return
        try:
            request = sender.build_request(c) if action_sender is None else None
        except ValueError as exc:
            self.writer.put(sender.classify(c, exc, sent_at=None, now=clock.now()))
            return
        sent_at = clock.now()
        result = await _attempt(client, c, request, action_sender)
        faults.kill_point("after_send")
        self.sent += 1
        if isinstance(result, SessionExpired) and c.account_id is not None:
            # EC087 / 401: the broker refused the request, nothing was placed. Log in again
            # (API key) and send once more with the new session while the copy is fresh.
            fresh = await self.session_lost(c.account_id, str(result), client)
            if fresh is not None and (deadline is None or clock.now() <= deadline):
                client = fresh
                sent_at = clock.now()
                result = await _attempt(client, c, request, action_sender)
                if isinstance(result, SessionExpired):
                    await self.session_lost(c.account_id, str(result), client)
        outcome = sender.classify(c, result, sent_at=sent_at, now=clock.now())
        if outcome.ambiguous:
            self._spawn(self._resolve(c, client, outcome), send=True, name=f"resolve-{c.id}")
            return
        self.writer.put(outcome)

    async def _resolve(self, c: Claimed, client: AsyncAliceBlueClient, outcome: Outcome) -> None:
        """Ambiguous: look the tag up in the follower's order book over ~10 s; never resend."""
        assert self.writer is not None
        logger.warning(
            "ambiguous send; looking the tag up",
            extra={"ctx": {"copy_trade": c.id, "tag": c.tag, "why": outcome.text[:200]}},
        )
        start = time.monotonic()
        for at in sender.lookup_schedule():
            wait = at - (time.monotonic() - start)
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                found = sender.lookup_outcome(
                    c, await client.order_book(), now=clock.now(), sent_at=outcome.sent_at
                )
            except BrokerError as exc:
                logger.warning(
                    "order book lookup failed", extra={"ctx": {"tag": c.tag, "error": str(exc)}}
                )
                continue
            if found is not None:
                self.writer.put(found)
                return
        self.writer.put(sender.not_found_outcome(c, sent_at=outcome.sent_at, why=outcome.text))

    def _after_write(self, batch: list[Outcome]) -> None:
        """After outcomes are written: track follower accounts, schedule retries."""
        loop = asyncio.get_running_loop()
        for o in batch:
            if o.status in (Status.SUCCESS, Status.UNKNOWN):
                self.track(o.claimed.account_id)
            elif o.status == Status.PENDING and o.retry_at is not None:
                delay = max((o.retry_at - clock.now()).total_seconds(), 0.0)
                loop.call_later(delay, self._dispatch, [o.claimed.id])

    async def _adopt_orphans(self) -> None:
        """SENDING rows whose copier died: resolve each by its tag (never resend)."""
        adopted = await self.db(steps.adopt_orphans, run_id=self.run_id, now=clock.now())
        for c in adopted:
            client = self._client(c.account_id)
            logger.warning(
                "resolving a SENDING copy left by a stopped copier",
                extra={"ctx": {"copy_trade": c.id, "tag": c.tag}},
            )
            if client is None:
                # no session to look with: keep it SENDING for the next pass
                await self.db(steps.set_fields, c.id, claimed_by=c.claimed_by + "~wait")
                continue
            outcome = Outcome(c, "ambiguous", text="left SENDING by a stopped copier")
            self._spawn(self._resolve(c, client, outcome), send=True, name=f"orphan-{c.id}")

    # --- sweeper -------------------------------------------------------------------------------
    async def sweep(self) -> None:
        now = clock.now()
        ids = await self.db(steps.sweep_ids, now, self.config.unclaimed_grace)
        self._dispatch(ids)
        for event_id, master_id, market in await self.db(decide.unplanned_manual_events):
            quote = None
            if market:
                quote = await self._manual_quote(master_id, event_id)
            recorded = await self.db(steps.plan_manual, event_id, quote)
            self._dispatch(recorded.pending_ids)
        if time.monotonic() - self._last_adopt >= 5.0:
            self._last_adopt = time.monotonic()
            await self._adopt_orphans()

    async def _manual_quote(self, master_id: int, event_id: int) -> Decimal | None:
        from trading.models import MasterOrderEvent

        order = await self.db(
            lambda: (
                MasterOrderEvent.objects.select_related("master_order")
                .get(pk=event_id)
                .master_order
            )
        )
        candidates = [
            s
            for s in self.accounts.values()
            if s.session is not None and (s.own_master_id == master_id or s.master_id == master_id)
        ]
        candidates.sort(key=lambda s: s.own_master_id != master_id)  # the master's own first
        for state in candidates:
            client = self._client(state.account_id)
            if client is None:
                continue
            quote = await self._quote(client, order.exchange, order.token)
            if quote is not None:
                return quote
        return None

    # --- follower tracking --------------------------------------------------------------------
    async def _follower_feed(self, watch: Watch) -> None:
        feed = OrderFeed(watch.client, silent_after=self.config.push_silent)
        watch.feed = feed
        async for event in feed.events():
            if isinstance(event, OrderEvent):
                watch.last_event_at = event.received_at
                self.tracker.put(watch, event.row)
            elif isinstance(event, UnknownFrame):
                watch.unhealthy_until = time.monotonic() + 60
            elif isinstance(event, FeedStateChange):
                watch.push_state = event.state.value
                if event.state == FeedState.CONNECTED:
                    watch.poll_now.set()
                if event.state == FeedState.SESSION_EXPIRED:
                    self._spawn(
                        self.session_lost(watch.account_id, event.detail, watch.client),
                        name=f"session-lost-{watch.account_id}",
                    )

    async def _follower_poll(self, watch: Watch) -> None:
        assert self.stopping is not None
        while not self.stopping.is_set():
            try:
                await self.poll_follower(watch)
                seconds = await self._interval(
                    watch, self.config.follower_poll_fast, self.config.follower_poll_slow
                )
            except asyncio.CancelledError:
                raise
            except BudgetExhausted as exc:
                seconds = max((exc.retry_at - clock.now()).total_seconds(), 1.0)
            except SessionExpired as exc:
                self._spawn(
                    self.session_lost(watch.account_id, str(exc), watch.client),
                    name=f"session-lost-{watch.account_id}",
                )
                seconds = self.config.follower_poll_fast
            except Exception:
                logger.exception(
                    "follower poll failed", extra={"ctx": {"account": watch.account_id}}
                )
                seconds = self.config.follower_poll_fast
            await self._wait_poll(watch, seconds)

    async def poll_follower(self, watch: Watch) -> tracking.TrackResult:
        rows = await watch.client.order_book()
        watch.last_poll_at = clock.now()
        result = await self.db(tracking.apply_follower_rows, watch.account_id, rows)
        self.hand_trades(result)
        return result

    def hand_trades(self, result: tracking.TrackResult) -> None:
        """A follower traded by hand on a copied position (a filled order that is not ours):
        reconcile that account now, not at the next periodic pass, so a hand close is out of
        the ledger before the master's exit is sized from it. Each order's fill is acted on
        once (the order book repeats it on every poll); accounts of a burst are reconciled
        together, after `HAND_TRADE_DELAY`."""
        today = clock.today_ist()
        if today != self._hand_day:
            self._hand_seen.clear()
            self._hand_day = today
        for account_id, order, filled in result.hand_fills:
            if filled > self._hand_seen.get((account_id, order), 0):
                self._hand_seen[(account_id, order)] = filled
                self._hand_accounts.add(account_id)
        if not self._hand_accounts or self.stopping is None or self.stopping.is_set():
            return
        if self._hand_task is None or self._hand_task.done():
            self._hand_task = asyncio.ensure_future(self._reconcile_hand_trades())
            self._spawn(self._hand_task, name="reconcile-hand-trades")

    async def _reconcile_hand_trades(self) -> None:
        from trading.engine.lifecycle import reconcile

        await asyncio.sleep(HAND_TRADE_DELAY)
        while self._hand_accounts:
            accounts, self._hand_accounts = sorted(self._hand_accounts), set()
            logger.info("hand trade: reconciling now", extra={"ctx": {"accounts": accounts}})
            await reconcile.reconcile_accounts(self, accounts)

    # --- the contract master ------------------------------------------------------------------
    async def refresh_contracts(self) -> None:
        """Load each exchange's contract master once per IST day (lot and freeze sizes): the
        download and parse in a worker thread, the upsert in the database thread. Retried every
        minute while the broker is unreachable (the sandbox may start after the copier)."""
        from trading.brokers.aliceblue import contracts

        day = clock.today_ist()
        for exchange in contracts.default_exchanges():
            if await self.db(contracts.is_fresh, exchange, day):
                continue
            if time.monotonic() < self._contracts_retry.get(exchange, 0.0):
                continue
            try:
                content = await asyncio.to_thread(contracts.download, exchange)
                rows = await asyncio.to_thread(contracts.parse_csv, exchange, content)
                upserted, removed = await self.db(contracts.store, rows, exchange=exchange, day=day)
            except (BrokerError, contracts.ContractFileError) as exc:
                self._contracts_retry[exchange] = time.monotonic() + 60.0
                logger.warning(
                    "contract master not loaded; retrying in a minute",
                    extra={"ctx": {"exchange": exchange, "error": str(exc)[:200]}},
                )
                continue
            logger.info(
                "contract master loaded",
                extra={"ctx": {"exchange": exchange, "rows": upserted, "removed": removed}},
            )

    # --- P&L ------------------------------------------------------------------------------------
    async def refresh_pnl(self) -> None:
        """Each follower account's position book, every COPIER_PNL_REFRESH_SECONDS."""
        now = time.monotonic()
        due = [
            s
            for s in self.accounts.values()
            if s.follower_id is not None
            and s.session is not None
            and now - self._last_pnl.get(s.account_id, -1e9) >= self.config.pnl_refresh
        ]
        semaphore = asyncio.Semaphore(16)

        async def one(state: steps.AccountState) -> None:
            client = self._client(state.account_id)
            if client is None:
                return
            async with semaphore:
                try:
                    positions = await client.positions()
                except SessionExpired as exc:
                    self._spawn(self.session_lost(state.account_id, str(exc), client))
                    return
                except BrokerError as exc:
                    logger.info(
                        "positions for P&L failed",
                        extra={"ctx": {"account": state.account_id, "error": str(exc)}},
                    )
                    return
            self._last_pnl[state.account_id] = time.monotonic()
            await self.db(pnl.store, state.account_id, positions)

        await asyncio.gather(*(one(s) for s in due))

    # --- heartbeat ------------------------------------------------------------------------------
    def describe(self, *, stopped: bool = False) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "host": socket.gethostname(),
            "stopped": stopped,
            "masters": {str(k): w.describe() for k, w in self.masters.items()},
            "followers": {
                "tracked": len(self.followers),
                "feeds": {str(k): w.push_state for k, w in self.followers.items()},
            },
            "accounts_ready": sum(1 for s in self.accounts.values() if s.session is not None),
            "in_flight": len(self._sends),
            "sent": self.sent,
            "errors": self.errors,
        }

    async def _heartbeat(self, *, stopped: bool = False) -> None:
        await self.db(
            steps.beat,
            name=self.name,
            started_at=self.started_at,
            state=self.describe(stopped=stopped),
        )
        for master_id, watch in self.masters.items():
            await self.db(
                steps.set_feed,
                master_id,
                push_state=watch.push_state,
                last_poll_at=watch.last_poll_at,
                last_event_at=watch.last_event_at,
                copier=self.name,
            )


def _settle_memory() -> None:
    """Move everything alive after start-up (Django, models, clients) out of the garbage
    collector's way: a full collection over a large heap can stall the event loop for tens
    of milliseconds in the middle of a fan-out. New objects are collected as usual; what was
    frozen and has since been dropped (old clients) is collected at the next settle."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


async def _attempt(
    client: AsyncAliceBlueClient,
    c: Claimed,
    request: Any,
    action_sender: Callable[[AsyncAliceBlueClient, Claimed], Awaitable[Any]] | None,
) -> Any:
    """One send of a claimed row: the acknowledgement, or the exception (for `classify`)."""
    try:
        if request is not None:
            return await client.place_order(request)
        assert action_sender is not None
        return await action_sender(client, c)
    except Exception as exc:  # classified: nothing escapes unrecorded
        return exc


async def _close_client(client: AsyncAliceBlueClient) -> None:
    with contextlib.suppress(Exception):
        await client.transport.close()


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _log_failure(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        logger.error(
            "copier task failed",
            exc_info=(type(exc), exc, exc.__traceback__),
            extra={"ctx": {"task": task.get_name()}},
        )
