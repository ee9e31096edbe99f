"""How the transports classify failures without an answer, over real sockets: a refused
connection never left (BrokerUnavailable); a request that was written and then timed out or
was cut off is ambiguous for an order and unavailable for a query. The synchronous and the
asynchronous transport give the same typed outcome for the same bytes."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from copytrade.lib.secret import Secret
from trading.brokers.aliceblue.errors import AmbiguousOrder, BrokerUnavailable, Rejected
from trading.brokers.aliceblue.protocol import Endpoints, OpenApi
from trading.brokers.aliceblue.transport import AsyncTransport, SyncTransport
from trading.brokers.aliceblue.types import OrderRequest, OrderType, Product, Side

ORDER = OrderRequest(
    exchange="NSE",
    token="1594",
    trading_symbol="INFY-EQ",
    side=Side.BUY,
    quantity=1,
    order_type=OrderType.MARKET,
    product=Product.MIS,
    tag="ct-tag-1",
)


class Misbehaving:
    """A socket server on port 0 that reads one request and then does `mode`."""

    def __init__(self, mode: str, body: bytes = b"") -> None:
        self.mode = mode
        self.body = body
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            data = b""
            conn.settimeout(2)
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
            self.requests.append(data)
            if self.mode == "hang":
                self._held.append(conn)
                continue
            if self.mode == "reset":
                conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"stat')
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                continue
            status, ctype = (
                (b"200 OK", b"text/html")
                if self.mode == "html"
                else (
                    b"200 OK",
                    b"application/json",
                )
            )
            conn.sendall(
                b"HTTP/1.1 "
                + status
                + b"\r\nContent-Type: "
                + ctype
                + b"\r\nContent-Length: "
                + str(len(self.body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + self.body
            )
            conn.close()

    @property
    def endpoints(self) -> Endpoints:
        base = f"http://127.0.0.1:{self.port}"
        return Endpoints(base, base, base + "/", "ws://x/a", "ws://x/b")

    def close(self) -> None:
        self._stop.set()
        for conn in self._held:
            conn.close()
        self.sock.close()
        self.thread.join(timeout=2)


@pytest.fixture
def server_factory() -> Iterator:
    servers: list[Misbehaving] = []

    def make(mode: str, body: bytes = b"") -> Misbehaving:
        server = Misbehaving(mode, body)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def _api(endpoints: Endpoints) -> OpenApi:
    return OpenApi(endpoints=endpoints, client_id="AB1234", session=Secret("sess-" + "x" * 30))


def run_sync(call):
    transport = SyncTransport(connect_timeout=0.5, read_timeout=0.4)
    try:
        return transport.run(call)
    finally:
        transport.close()


def run_async(call):
    async def go():
        transport = AsyncTransport(connect_timeout=0.5, read_timeout=0.4)
        try:
            return await transport.run(call)
        finally:
            await transport.close()

    return asyncio.run(go())


RUNNERS = pytest.mark.parametrize("run", [run_sync, run_async], ids=["sync", "async"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@RUNNERS
def test_connection_refused_is_unavailable_even_for_an_order(run):
    base = f"http://127.0.0.1:{_free_port()}"
    api = _api(Endpoints(base, base, base, "ws://x", "ws://x"))
    with pytest.raises(BrokerUnavailable, match="before the request was sent"):
        run(api.place_order(ORDER))


@RUNNERS
def test_read_timeout_after_an_order_was_sent_is_ambiguous(run, server_factory):
    server = server_factory("hang")
    with pytest.raises(AmbiguousOrder) as caught:
        run(_api(server.endpoints).place_order(ORDER))
    assert caught.value.tag == "ct-tag-1"
    assert b"POST /open-api/od/v1/orders/placeorder" in server.requests[0]


@RUNNERS
def test_read_timeout_on_a_query_is_unavailable(run, server_factory):
    server = server_factory("hang")
    with pytest.raises(BrokerUnavailable, match="after the request was sent"):
        run(_api(server.endpoints).order_book())


@RUNNERS
def test_reset_mid_response_is_ambiguous_for_cancel(run, server_factory):
    server = server_factory("reset")
    with pytest.raises(AmbiguousOrder) as caught:
        run(_api(server.endpoints).cancel_order("250526000002881"))
    assert caught.value.broker_order_id == "250526000002881"


@RUNNERS
def test_html_answer_to_an_order_is_ambiguous(run, server_factory):
    server = server_factory("html", b"<html><body>Maintenance</body></html>")
    with pytest.raises(AmbiguousOrder):
        run(_api(server.endpoints).place_order(ORDER))


@RUNNERS
def test_json_rejection_passes_through_the_transport(run, server_factory):
    server = server_factory("json", b'{"status":"Not_Ok","message":"EC930"}')
    with pytest.raises(Rejected) as caught:
        run(_api(server.endpoints).place_order(ORDER))
    assert caught.value.code == "EC930"


@RUNNERS
def test_the_wire_request_carries_exactly_our_headers_and_body(run, server_factory):
    server = server_factory("json", b'{"status":"Ok","result":[{"brokerOrderId":"1234567"}]}')
    ack = run(_api(server.endpoints).place_order(ORDER))
    assert ack.broker_order_id == "1234567"
    head = server.requests[0].split(b"\r\n\r\n")[0].decode().lower()
    assert "authorization: bearer sess-" in head
    assert "content-type: application/json" in head
