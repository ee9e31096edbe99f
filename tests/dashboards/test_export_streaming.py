"""A long export does not hit the web server's worker timeout: the Procfile's gunicorn streams
it from a worker whose heartbeat does not depend on the length of a request.

The download is made long on purpose: the client's receive window is tiny and it waits
before reading, so the server blocks on a full socket for longer than `--timeout`. A sync
worker would be killed mid-stream (the arbiter sees no heartbeat) and the file cut short.
"""

from __future__ import annotations

import csv
import io
import socket
import time
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from tests.conftest import login
from tests.liveserver import web_server
from trading.models import CopyTrade, MasterOrder, MasterOrderEvent

TIMEOUT = 2
ROWS = 6000


def _seed(follower) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    orders = MasterOrder.objects.bulk_create(
        MasterOrder(
            master=follower.master,
            broker_order_id=f"S{i:08d}",
            exchange="NSE",
            trading_symbol="INFY-EQ",
            side="BUY",
            quantity=10,
            order_type="MARKET",
            product="MIS",
            first_seen_at=now,
        )
        for i in range(ROWS)
    )
    events = MasterOrderEvent.objects.bulk_create(
        MasterOrderEvent(
            master_order=o, kind="accepted", source="poll", received_at=now, quantity=10
        )
        for o in orders
    )
    CopyTrade.objects.bulk_create(
        CopyTrade(
            event=e,
            master=follower.master,
            follower=follower,
            tag=f"stream{i:010d}",
            exchange="NSE",
            trading_symbol="INFY-EQ",
            side="BUY",
            order_type="MARKET",
            product="MIS",
            master_quantity=10,
            quantity=10,
            lot_multiplier=Decimal(1),
            status="FAILED",
            reason="r" * 500,
            broker_error_message="m" * 500,
        )
        for i, e in enumerate(events)
    )


@pytest.mark.django_db(transaction=True)
def test_long_export_streams_past_the_worker_timeout(follower_a, staff, tmp_path):
    _seed(follower_a)
    browser = login(Client(), staff)
    cookie = browser.cookies[settings.SESSION_COOKIE_NAME].value
    with web_server(tmp_path, timeout=TIMEOUT) as server:
        port = int(server.url.rsplit(":", 1)[1])
        today = timezone.localdate().isoformat()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.sendall(
            f"GET /admin/trading/copytrade/export/?start={today}&end={today} HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nCookie: {settings.SESSION_COOKIE_NAME}={cookie}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        time.sleep(TIMEOUT * 2.5)  # the server is blocked on a full socket all this time
        chunks = []
        sock.settimeout(20)
        while data := sock.recv(65536):
            chunks.append(data)
        sock.close()
        raw = b"".join(chunks)
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        assert b"chunked" not in head.lower() or body.endswith(b"0\r\n\r\n"), "cut short"
        if b"chunked" in head.lower():
            body = _dechunk(body)
        rows = list(csv.reader(io.StringIO(body.decode().lstrip("\ufeff"))))
        assert len(rows) == ROWS + 1
        assert "WORKER TIMEOUT" not in server.log_text()


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while True:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += rest[:size]
        body = rest[size + 2 :]
