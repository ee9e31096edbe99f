"""Two transports for the one protocol: `SyncTransport` (requests) and `AsyncTransport`
(aiohttp). They move bytes and classify *how* a request failed; everything else lives in
`protocol.py`.

The rule for failures without an answer:

* provably never left (DNS failure, connection refused, connect timeout) → `BrokerUnavailable`;
* anything after the request was written (read timeout, reset or disconnect mid-response,
  truncated body) → `AmbiguousOrder` for place/modify/cancel, `BrokerUnavailable` otherwise.

Neither transport retries a request by itself (urllib3 is left at `Retry(0, read=False)`,
aiohttp never retries a POST): an order is sent at most once per call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, TypeVar

import aiohttp
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
)

from copytrade.lib.logging import scrub
from trading.brokers.aliceblue.errors import AmbiguousOrder, BrokerError, BrokerUnavailable
from trading.brokers.aliceblue.protocol import Call, Kind, Raw, interpret

logger = logging.getLogger("trading.brokers.aliceblue")
T = TypeVar("T")


def _timeouts() -> tuple[float, float]:
    from django.conf import settings

    return float(settings.ALICEBLUE_CONNECT_TIMEOUT), float(settings.ALICEBLUE_READ_TIMEOUT)


def no_answer(call: Call[Any], why: str, *, sent: bool) -> BrokerError:
    """The typed error for a request that got no HTTP answer."""
    if sent and call.kind is Kind.ORDER:
        return AmbiguousOrder(
            f"{why} after the request was sent; the order may exist",
            op=call.op,
            tag=call.tag,
            broker_order_id=call.broker_order_id,
        )
    where = "after the request was sent" if sent else "before the request was sent"
    return BrokerUnavailable(f"{why} {where}", op=call.op)


def _log(call: Call[Any], status: int | str, started: float) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    logger.info(
        "aliceblue %s",
        call.op,
        extra={
            "ctx": {
                "method": call.method,
                "url": scrub(call.url),
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            }
        },
    )


class SyncTransport:
    """requests.Session with its own connection pool (one per account client)."""

    def __init__(
        self,
        *,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        pool_size: int = 4,
    ) -> None:
        default_connect, default_read = _timeouts()
        self.timeout = (connect_timeout or default_connect, read_timeout or default_read)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.pop("User-Agent", None)

    def send(self, call: Call[Any]) -> Raw:
        started = time.perf_counter()
        try:
            response = self.session.request(
                call.method,
                call.url,
                data=call.body_bytes(),
                headers=call.wire_headers(),
                timeout=self.timeout,
                allow_redirects=False,
            )
            body = response.content
        except requests.exceptions.ConnectTimeout:
            _log(call, "connect-timeout", started)
            raise no_answer(call, "connect timeout", sent=False) from None
        except requests.exceptions.ReadTimeout:
            _log(call, "read-timeout", started)
            raise no_answer(call, "read timeout", sent=True) from None
        except requests.exceptions.ConnectionError as exc:
            sent = not _never_left(exc)
            _log(call, "connection-error", started)
            raise no_answer(call, "connection failed", sent=sent) from None
        except requests.exceptions.RequestException:
            _log(call, "error", started)
            raise no_answer(call, "transport error", sent=True) from None
        _log(call, response.status_code, started)
        return Raw(
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=body,
        )

    def run(self, call: Call[T]) -> T:
        return interpret(call, self.send(call))

    def close(self) -> None:
        self.session.close()


def _never_left(exc: BaseException) -> bool:
    """True when a requests ConnectionError provably happened before the request was sent."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError | NameResolutionError | ConnectTimeoutError):
            return True
        if isinstance(current, ConnectionRefusedError):
            return True
        if isinstance(current, MaxRetryError):
            stack.append(current.reason)
        stack.extend(arg for arg in current.args if isinstance(arg, BaseException))
        stack.append(current.__cause__)
        stack.append(current.__context__)
    return False


class AsyncTransport:
    """aiohttp.ClientSession with its own pool. Create and use inside one event loop."""

    def __init__(
        self,
        *,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        pool_size: int = 8,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        default_connect, default_read = _timeouts()
        self.connect_timeout = connect_timeout or default_connect
        self.read_timeout = read_timeout or default_read
        self.pool_size = pool_size
        self._session = session
        self._owns_session = session is None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.pool_size, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=self.connect_timeout,
                    sock_connect=self.connect_timeout,
                    sock_read=self.read_timeout,
                ),
                skip_auto_headers=("User-Agent",),
            )
            self._owns_session = True
        return self._session

    async def send(self, call: Call[Any]) -> Raw:
        started = time.perf_counter()
        client = self._client()
        try:
            async with client.request(
                call.method,
                call.url,
                data=call.body_bytes(),
                headers=call.wire_headers(),
                allow_redirects=False,
            ) as response:
                body = await response.read()
                status = response.status
                headers = {k.lower(): v for k, v in response.headers.items()}
        except aiohttp.ConnectionTimeoutError:
            _log(call, "connect-timeout", started)
            raise no_answer(call, "connect timeout", sent=False) from None
        except aiohttp.ClientConnectorError:
            _log(call, "connect-error", started)
            raise no_answer(call, "connection failed", sent=False) from None
        except (aiohttp.SocketTimeoutError, TimeoutError):
            _log(call, "read-timeout", started)
            raise no_answer(call, "read timeout", sent=True) from None
        except (aiohttp.ClientError, OSError):
            _log(call, "connection-error", started)
            raise no_answer(call, "connection failed", sent=True) from None
        _log(call, status, started)
        return Raw(status=status, headers=headers, body=body)

    async def run(self, call: Call[T]) -> T:
        return interpret(call, await self.send(call))

    async def close(self) -> None:
        if self._session is not None and self._owns_session and not self._session.closed:
            await self._session.close()
            # let the connector's transports finish closing (aiohttp's documented pattern)
            await asyncio.sleep(0)
