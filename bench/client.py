"""Benchmark: client CPU per order, synchronous (threads + requests) vs asynchronous (aiohttp).
Prints one JSON object.

    .venv/bin/python bench/client.py [--orders 400] [--concurrency 20] [--generation open|ant]

The sandbox broker runs in a subprocess (`SandboxProcess`, loopback only), so its CPU is not
counted; this process's CPU time (`time.process_time`) over N market orders is, with the
same protocol layer in both runs. Bounded: N orders per mode, then it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "copytrade.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from copytrade.lib.secret import Secret  # noqa: E402
from sandbox.testing import SandboxProcess  # noqa: E402
from trading.brokers.aliceblue import protocol  # noqa: E402
from trading.brokers.aliceblue.client import AliceBlueClient, AsyncAliceBlueClient  # noqa: E402
from trading.brokers.aliceblue.mapping import NoLots  # noqa: E402
from trading.brokers.aliceblue.protocol import Endpoints  # noqa: E402
from trading.brokers.aliceblue.transport import (  # noqa: E402
    AsyncTransport,
    SyncTransport,
)
from trading.brokers.aliceblue.types import (  # noqa: E402
    AccountSession,
    Generation,
    OrderRequest,
    OrderType,
    Product,
    Side,
)


def _session(sbx: SandboxProcess, endpoints: Endpoints, generation: Generation) -> AccountSession:
    info = sbx.create_account(funds="100000000000", daily_login=True)
    transport = SyncTransport(connect_timeout=3, read_timeout=10)
    try:
        if generation is Generation.ANT:
            enc = transport.run(protocol.ant_enc_key_call(endpoints, user_id=info.client_id))
            grant = transport.run(
                protocol.ant_session_call(
                    endpoints, user_id=info.client_id, api_key=Secret(info.api_key), enc_key=enc
                )
            )
        else:
            grant = transport.run(
                protocol.open_api_session_call(
                    endpoints,
                    user_id=info.client_id,
                    auth_code=sbx.auth_code(info.client_id),
                    api_secret=Secret(sbx.vendor_app.api_secret),
                )
            )
    finally:
        transport.close()
    return AccountSession(client_id=grant.client_id, generation=generation, token=grant.token)


def _order(i: int) -> OrderRequest:
    return OrderRequest(
        exchange="NSE",
        token="1594",  # noqa: S106 (a contract-master token, not a secret)
        trading_symbol="INFY-EQ",
        side=Side.BUY if i % 2 else Side.SELL,
        quantity=1,
        order_type=OrderType.MARKET,
        product=Product.MIS,
        tag=f"bench-{i}",
    )


def run_sync(session: AccountSession, endpoints: Endpoints, n: int, workers: int) -> dict:
    clients = [
        AliceBlueClient(
            session,
            endpoints=endpoints,
            lots=NoLots(),
            budget=None,
            on_session_expired=None,
            transport=SyncTransport(pool_size=workers),
        )
        for _ in range(workers)
    ]

    def send(i: int) -> str:
        return clients[i % workers].place_order(_order(i)).broker_order_id

    cpu, wall = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        ids = list(pool.map(send, range(n)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    for client in clients:
        client.transport.close()  # the caller owns a transport it passes in
    return _result(ids, cpu, wall, n)


def run_async(session: AccountSession, endpoints: Endpoints, n: int, concurrency: int) -> dict:
    async def main() -> tuple[list[str], float, float]:
        client = AsyncAliceBlueClient(
            session,
            endpoints=endpoints,
            lots=NoLots(),
            budget=None,
            on_session_expired=None,
            transport=AsyncTransport(pool_size=concurrency),
        )
        gate = asyncio.Semaphore(concurrency)

        async def send(i: int) -> str:
            async with gate:
                return (await client.place_order(_order(i))).broker_order_id

        cpu, wall = time.process_time(), time.perf_counter()
        ids = await asyncio.gather(*(send(i) for i in range(n)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await client.transport.close()  # the caller owns a transport it passes in
        return list(ids), cpu, wall

    ids, cpu, wall = asyncio.run(main())
    return _result(ids, cpu, wall, n)


def _result(ids: list[str], cpu: float, wall: float, n: int) -> dict:
    return {
        "orders": n,
        "distinct_acks": len(set(ids)),
        "cpu_ms_per_order": round(cpu * 1000 / n, 3),
        "wall_s": round(wall, 3),
        "orders_per_s": round(n / wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--generation", choices=["open", "ant"], default="open")
    args = parser.parse_args()
    generation = Generation(args.generation)
    with SandboxProcess() as sbx:
        endpoints = Endpoints(sbx.url, sbx.url, sbx.url + "/", sbx.ws_url, sbx.ws_url)
        session = _session(sbx, endpoints, generation)
        # warm both paths (imports, first connections)
        run_sync(session, endpoints, 10, 2)
        run_async(session, endpoints, 10, 2)
        result = {
            "benchmark": "client_cpu_per_order",
            "generation": generation.value,
            "concurrency": args.concurrency,
            "sync_threads_requests": run_sync(session, endpoints, args.orders, args.concurrency),
            "async_aiohttp": run_async(session, endpoints, args.orders, args.concurrency),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
