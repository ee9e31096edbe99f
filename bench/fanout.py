"""Benchmark: the copier's fan-out of one master order to N followers (issue 4). Prints one
JSON object per run:

    .venv/bin/python bench/fanout.py --broker thin --followers 100 [--latency-ms 50]
    .venv/bin/python bench/fanout.py --broker sandbox --followers 100 [--push-silent]

    {"broker", "followers", "L_ms", "events",
     "detection_ms": {"p50", "p95", "max"},          (sandbox only)
     "dispatch_ms": {"p50", "p95", "max"},
     "end_to_end_ms": {"p50", "p95", "max", "p95_x_L"},
     "cpu_ms_per_order", "peak_rss_mb"}

Brokers:
* ``thin`` — a minimal local HTTP server (its own process) that answers each order with an
  acknowledgement after L ms and does nothing else, so the figures are the copier's own,
  database included. Master events are injected into the copier's detection path
  (`Copier.observe`: read-only diff → one decision transaction → claim → governed,
  concurrent send through the aiohttp client → batched result writes).
* ``sandbox`` — the full sandbox broker (its own process) with L ms added to every REST
  answer; master orders are placed through its API and detected by the copier's running
  loops (order-notify push, or with ``--push-silent`` the budgeted poll); follower order
  tracking runs too.

Latencies: detection = the broker accepted the master order → the copier received the event;
dispatch = the copier received the event (or it was injected) → each follower request sent;
end-to-end = master accepted (or injected) → each follower acknowledged. CPU is this process's
(the copier's: event loop + database thread) CPU time over the measured events divided by the
follower orders sent; peak RSS is this process's. The first event warms connections and is not
measured. Everything runs on this machine against a fresh SQLite database in a temporary
directory (or DATABASE_URL if set).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

INSTRUMENT = ("NSE", "1594", "INFY-EQ", "INFY")


# --- The thin broker ------------------------------------------------------------------------
def serve_thin(port: int, latency_ms: int) -> None:
    """Acknowledge every ANT place-order request after latency_ms; nothing else."""
    import itertools

    from aiohttp import web

    numbers = itertools.count(250000000000001)

    async def place(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(latency_ms / 1000)
        return web.json_response([{"stat": "Ok", "NOrdNo": str(next(numbers))}])

    async def empty(request: web.Request) -> web.Response:
        return web.json_response({"stat": "Not_Ok", "emsg": "No Data"})

    app = web.Application()
    app.router.add_post("/rest/AliceBlueAPIService/api/placeOrder/executePlaceOrder", place)
    app.router.add_route("*", "/{tail:.*}", empty)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=4096)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


# --- Django ----------------------------------------------------------------------------------
def _django(var_dir: Path, env: dict[str, str]) -> None:
    os.environ["COPYTRADE_VAR_DIR"] = str(var_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "copytrade.settings")
    os.environ["LOG_LEVEL"] = "ERROR"
    os.environ["DEBUG"] = "false"  # as in production: no query log
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _people(n: int, multiplier: str = "1") -> tuple[Any, list[Any]]:
    from datetime import date
    from decimal import Decimal

    from accounts.models import BrokerAccount, Follower, Master, User
    from trading.models import Instrument

    exchange, token, tsym, symbol = INSTRUMENT
    Instrument.objects.get_or_create(
        exchange=exchange,
        token=token,
        defaults={
            "trading_symbol": tsym,
            "symbol": symbol,
            "lot_size": 1,
            "tick_size": Decimal("0.05"),
            "refreshed_on": date.today(),
        },
    )
    user = User.objects.create(username="bench-master", role=User.Role.MASTER)
    master = Master.objects.create(user=user)
    master_account = BrokerAccount(owner=user, master=master, client_id="BM0001")
    master_account.set_api_key("bench-key-master-0123456789")
    master_account.save()
    followers = []
    for i in range(n):
        fu = User.objects.create(username=f"bench-f{i:05d}", role=User.Role.FOLLOWER)
        follower = Follower.objects.create(
            master=master,
            user=fu,
            display_name=f"F{i}",
            lot_multiplier=Decimal(multiplier),
            max_quantity=100000,
            max_order_value=Decimal("100000000"),
            max_daily_loss=Decimal("1000000"),
            allowed_product_types=["MIS", "CNC", "NRML"],
        )
        account = BrokerAccount(owner=fu, master=master, client_id=f"BF{i:05d}")
        account.set_api_key(f"bench-key-{i:05d}-0123456789")
        account.save()
        followers.append((follower, account))
    return (master, master_account), followers


def _ready_sessions(accounts: list[Any]) -> None:
    """Today's sessions without a broker (the thin broker accepts any token)."""
    from accounts import crypto
    from copytrade.lib import clock
    from trading.brokers import sessions
    from trading.models import BrokerSession

    sealed, _ = crypto.seal("thin-session-token")
    BrokerSession.objects.bulk_create(
        [
            BrokerSession(
                account=account,
                state=BrokerSession.State.READY,
                generation=BrokerSession.Generation.ANT,
                session_token_encrypted=sealed,
                trading_day=sessions.trading_day(),
                obtained_at=clock.now(),
            )
            for account in accounts
        ]
    )


# --- Measurements -----------------------------------------------------------------------------
def _summary(values: list[float], latency_ms: int | None = None) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {"p50": 0.0, "p95": 0.0, "max": 0.0}
    p95 = values[min(len(values) - 1, max(0, round(0.95 * len(values)) - 1))]
    out = {
        "p50": round(statistics.median(values), 2),
        "p95": round(p95, 2),
        "max": round(values[-1], 2),
    }
    if latency_ms:
        out["p95_x_L"] = round(p95 / latency_ms, 2)
    return out


def _rows_for(event_ids: list[int]) -> list[tuple[Any, ...]]:
    from trading.models import CopyTrade

    return list(
        CopyTrade.objects.filter(event_id__in=event_ids).values_list(
            "status", "received_at", "sent_at", "acknowledged_at", "master_accepted_at"
        )
    )


async def _wait_done(copier: Any, expected: int, event_ids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await copier.drain(timeout=timeout)
        rows = await copier.db(_rows_for, event_ids)
        if len(rows) >= expected and all(r[0] not in ("PENDING", "SENDING") for r in rows):
            return
        await asyncio.sleep(0.01)
    raise RuntimeError("the fan-out did not finish in time")


# --- thin --------------------------------------------------------------------------------------
def run_thin(args: argparse.Namespace) -> dict[str, Any]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve-thin", str(port), "--latency-ms", str(args.latency_ms)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port)
        with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
            url = f"http://127.0.0.1:{port}"
            _django(
                Path(tmp),
                {
                    "ALICEBLUE_BROKER": "sandbox",
                    "ALICEBLUE_ANT_API_URL": url,
                    "ALICEBLUE_OPEN_API_URL": url,
                    "TRADING_ROUND_THE_CLOCK": "true",
                    "ALICEBLUE_READ_TIMEOUT_MS": "30000",
                },
            )
            (master, master_account), followers = _people(args.followers)
            _ready_sessions([master_account] + [a for _, a in followers])
            return asyncio.run(_thin_events(args, master, master_account))
    finally:
        server.terminate()
        server.wait(timeout=10)


def _order_row(n: int) -> Any:
    from decimal import Decimal

    from copytrade.lib import clock
    from trading.brokers.aliceblue.types import OrderRow, OrderStatus, OrderType, Product, Side

    exchange, token, tsym, _ = INSTRUMENT
    return OrderRow(
        broker_order_id=f"M{n:08d}",
        status=OrderStatus.COMPLETE,
        raw_status="complete",
        exchange=exchange,
        token=token,
        trading_symbol=tsym,
        side=Side.BUY,
        quantity=1,
        filled_quantity=1,
        pending_quantity=0,
        cancelled_quantity=0,
        price=None,
        trigger_price=None,
        average_price=Decimal("1500"),
        order_type=OrderType.MARKET,
        product=Product.MIS,
        complexity=None,
        validity=None,
        tag="",
        rejection_reason="",
        order_time=clock.now(),
        exchange_time=None,
        exchange_order_id="",
    )


async def _thin_events(
    args: argparse.Namespace, master: Any, master_account: Any
) -> dict[str, Any]:
    from copytrade.lib import clock
    from trading.engine import steps
    from trading.engine.config import CopierConfig
    from trading.engine.runner import Copier, Watch

    config = CopierConfig(track_followers=False, pnl_refresh=0, write_delay=0.002)
    copier = Copier(name="bench", config=config)
    await copier.start()
    await copier.refresh(start_watches=False)
    await copier.db(steps.set_feed, master.pk, baseline_day=clock.today_ist())
    watch = Watch(master_account.pk, copier._client(master_account.pk), master_id=master.pk)
    events = args.events
    samples: dict[str, list[float]] = {"dispatch": [], "e2e": []}
    cpu = 0.0
    sent = 0
    try:
        for n in range(events + 1):
            row = _order_row(n)
            injected = clock.now()
            cpu_start = time.process_time()
            recorded = await copier.observe(watch, [row], "push", injected)
            await _wait_done(copier, args.followers, recorded.event_ids, timeout=120)
            cpu_used = time.process_time() - cpu_start
            rows = await copier.db(_rows_for, recorded.event_ids)
            if n == 0:
                continue  # warm-up: new connections to every account
            cpu += cpu_used
            sent += len(rows)
            for status, received, sent_at, acked, _accepted in rows:
                if status != "SUCCESS":
                    raise RuntimeError(f"a copy ended {status}")
                samples["dispatch"].append((sent_at - received).total_seconds() * 1000)
                samples["e2e"].append((acked - injected).total_seconds() * 1000)
            await asyncio.sleep(0.2)
    finally:
        await copier.close()
    return {
        "broker": "thin",
        "followers": args.followers,
        "L_ms": args.latency_ms,
        "events": events,
        "detection_ms": None,
        "dispatch_ms": _summary(samples["dispatch"]),
        "end_to_end_ms": _summary(samples["e2e"], args.latency_ms),
        "cpu_ms_per_order": round(cpu * 1000 / max(sent, 1), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


# --- sandbox -------------------------------------------------------------------------------------
def _proc_cpu_seconds(pid: int) -> float:
    """user + system CPU of a process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _explain(event_id: int) -> None:
    """BENCH_DEBUG=1: where one event's time went (to stderr)."""
    from trading.models import CopyTrade, MasterOrderEvent

    event = MasterOrderEvent.objects.select_related("master_order").get(pk=event_id)
    t0 = event.received_at
    print(f"event {event.kind} via {event.source} at {t0:%H:%M:%S.%f}", file=sys.stderr)
    for ct in CopyTrade.objects.filter(event_id=event_id).order_by("pk")[:3]:
        marks = {"decided": ct.decided_at, "sent": ct.sent_at, "acked": ct.acknowledged_at}
        for tr in ct.transitions.all():
            marks[f"->{tr.to_status}"] = tr.at
        print(
            "  "
            + " ".join(
                f"{k}+{(v - t0).total_seconds() * 1000:.0f}ms" for k, v in marks.items() if v
            ),
            file=sys.stderr,
        )


def run_sandbox(args: argparse.Namespace) -> dict[str, Any]:
    """The sandbox and the copier each in their own process; this one places the master's
    orders through the sandbox's API and reads the timings the copier recorded."""
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        os.environ["COPYTRADE_VAR_DIR"] = tmp
        os.environ["LOG_LEVEL"] = "ERROR"
        os.environ["DEBUG"] = "false"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "copytrade.settings")
        from sandbox.testing import SandboxProcess

        env = {"COPYTRADE_VAR_DIR": tmp, "LOG_LEVEL": "ERROR", "DEBUG": "false"}
        with SandboxProcess(env=env) as sbx:
            urls = {
                "ALICEBLUE_BROKER": "sandbox",
                "ALICEBLUE_OPEN_API_URL": sbx.url,
                "ALICEBLUE_ANT_API_URL": sbx.url,
                "ALICEBLUE_LOGIN_URL": sbx.url + "/",
                "ALICEBLUE_ORDER_WS_URL": sbx.order_ws_url("g3"),
                "ALICEBLUE_ANT_ORDER_WS_URL": sbx.order_ws_url("g2"),
                "TRADING_ROUND_THE_CLOCK": "true",
            }
            _django(Path(tmp), urls)
            return _sandbox_run(args, sbx, {**env, **urls})


def _sandbox_run(args: argparse.Namespace, sbx: Any, env: dict[str, str]) -> dict[str, Any]:
    from datetime import datetime

    from django.db import connection

    from trading.brokers import sessions
    from trading.models import CopyTrade, MasterOrderEvent

    (_master, master_account), followers = _people(args.followers)
    for account in [master_account] + [a for _, a in followers]:
        info = sbx.create_account(account.client_id, funds="100000000", daily_login=True)
        account.set_api_key(info.api_key)
        account.save()
        sessions.connect_api_key(account=account)
    sbx.set_faults(None, latency_ms=args.latency_ms)
    if args.push_silent:
        sbx.set_faults(master_account.client_id, push_silent=True)
    poll_ms = int(args.poll_seconds * 1000)
    copier_env = {
        **os.environ,
        **env,
        "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}",
        "COPIER_POLL_FAST_MS": str(poll_ms),
        "COPIER_POLL_SLOW_MS": "15000",
        "COPIER_PUSH_SILENT_SECONDS": "1",
        "COPIER_PNL_REFRESH_SECONDS": "0",
        "COPIER_LOAD_CONTRACTS": "false",
    }
    connection.close()
    copier = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "copier", "--name", "bench"],
        cwd=ROOT,
        env=copier_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    samples: dict[str, list[float]] = {"detection": [], "dispatch": [], "e2e": []}
    cpu = 0.0
    sent = 0
    client = master_account.client_id
    try:
        deadline = time.monotonic() + 60
        while not (sbx.sockets(client) or args.push_silent):
            if time.monotonic() > deadline or copier.poll() is not None:
                raise RuntimeError("the copier did not connect the master's push")
            time.sleep(0.05)
        time.sleep(2.0)  # the day's baseline taken, follower feeds connected
        for n in range(args.events + 1):
            cpu_start = _proc_cpu_seconds(copier.pid)
            order = sbx.place_order(client, "NSE", "INFY-EQ", "BUY" if n % 2 == 0 else "SELL", 1)
            accepted = datetime.fromisoformat(order["placed_at"])
            deadline = time.monotonic() + 60
            while True:
                found = (
                    MasterOrderEvent.objects.filter(
                        master_order__broker_order_id=order["order_no"], kind="accepted"
                    )
                    .values_list("pk", "received_at")
                    .first()
                )
                rows = (
                    list(
                        CopyTrade.objects.filter(event_id=found[0]).values_list(
                            "status", "received_at", "sent_at", "acknowledged_at"
                        )
                    )
                    if found
                    else []
                )
                if len(rows) >= args.followers and all(
                    r[0] not in ("PENDING", "SENDING") for r in rows
                ):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the master order was not copied in time")
                time.sleep(0.05)
            used = _proc_cpu_seconds(copier.pid) - cpu_start
            assert found is not None
            if n == 0:
                continue  # warm-up
            cpu += used
            sent += len(rows)
            samples["detection"].append((found[1] - accepted).total_seconds() * 1000)
            for status, received, sent_at, acked in rows:
                if status != "SUCCESS":
                    raise RuntimeError(f"a copy ended {status}")
                samples["dispatch"].append((sent_at - received).total_seconds() * 1000)
                samples["e2e"].append((acked - accepted).total_seconds() * 1000)
            if os.environ.get("BENCH_DEBUG"):
                _explain(found[0])
            time.sleep(0.5)
        peak = _proc_peak_rss_mb(copier.pid)
    finally:
        copier.terminate()
        copier.wait(timeout=60)
    return {
        "broker": "sandbox",
        "followers": args.followers,
        "L_ms": args.latency_ms,
        "events": args.events,
        "push": "silent" if args.push_silent else "on",
        "poll_interval_s": args.poll_seconds if args.push_silent else 15.0,
        "detection_ms": _summary(samples["detection"]),
        "dispatch_ms": _summary(samples["dispatch"]),
        "end_to_end_ms": _summary(samples["e2e"], args.latency_ms),
        "cpu_ms_per_order": round(cpu * 1000 / max(sent, 1), 3),
        "peak_rss_mb": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--broker", choices=["thin", "sandbox"], default="thin")
    parser.add_argument("--followers", type=int, default=100)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--events", type=int, default=None, help="measured master orders")
    parser.add_argument("--push-silent", action="store_true", help="sandbox: detect by poll")
    parser.add_argument("--poll-seconds", type=float, default=1.0, help="fast poll interval")
    parser.add_argument("--serve-thin", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_thin is not None:
        serve_thin(args.serve_thin, args.latency_ms)
        return
    if args.events is None:
        args.events = max(3, min(20, 2000 // max(args.followers, 1)))
    result = run_thin(args) if args.broker == "thin" else run_sandbox(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
