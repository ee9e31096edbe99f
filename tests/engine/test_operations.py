"""Running the copier: it refuses to start with unapplied migrations; SIGTERM finishes the sends
in flight and exits 0; its heartbeat is shown by /healthz; its logs carry no secrets; the rate
governor spaces a burst of freeze legs."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from decimal import Decimal

from django.test import Client

from tests.engine.conftest import account_of, nifty_future
from tests.engine.processes import BASE_DIR, CopierProcess, wait_settled
from trading.models import CopierHeartbeat, CopyTrade

Status = CopyTrade.Status


def test_the_copier_refuses_to_start_with_unapplied_migrations(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "copytrade.settings",
        "COPYTRADE_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
    }
    done = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "copier", "--once"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "unapplied migrations" in done.stderr and "migrate" in done.stderr


def test_sigterm_finishes_the_sends_in_flight_and_exits_cleanly(make_world):
    world = make_world({})
    (follower,) = world.followers
    world.tick()
    world.sbx.set_faults(world.client_of(follower), latency_ms=900)  # under the read timeout
    copier = CopierProcess(world.sbx, name="copier")
    try:
        copier.wait_ready()
        world.place("INFY-EQ", "BUY", 2)
        deadline = time.monotonic() + 15
        while not CopyTrade.objects.filter(status=Status.SENDING).exists():
            assert time.monotonic() < deadline, copier.output()
            time.sleep(0.02)
        assert copier.terminate(timeout=20) == 0, copier.output()
    finally:
        copier.stop()
    (copy,) = world.copies(follower)
    assert copy.status == Status.SUCCESS  # the send finished and its result was written
    assert len(world.orders_of(follower)) == 1
    beat = CopierHeartbeat.objects.get(name="copier")
    assert beat.state["stopped"] is True


def test_healthz_shows_the_copier_heartbeat(make_world):
    world = make_world({})
    copier = CopierProcess(world.sbx, name="copier-health")
    try:
        copier.wait_ready()
        deadline = time.monotonic() + 15
        while True:  # the heartbeat (every second here) reports the first poll
            body = Client().get("/healthz").json()
            (process,) = [p for p in body["copier"]["processes"] if p["name"] == "copier-health"]
            master_state = process["state"]["masters"][str(world.master.pk)]
            if master_state["last_poll"] is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert body["copier"]["status"] == "ok"
        assert process["alive"] is True and process["pid"] == copier.proc.pid
        assert master_state["last_poll"] is not None
        assert process["state"]["accounts_ready"] == 2
        assert copier.terminate() == 0
    finally:
        copier.stop()
    body = Client().get("/healthz").json()
    assert body["copier"]["status"] == "down"  # it said it stopped


def test_the_copier_logs_no_secrets(make_world, caplog):
    world = make_world({})
    (follower,) = world.followers
    caplog.set_level(logging.DEBUG)
    world.tick()
    world.place("INFY-EQ", "BUY", 2)
    world.tick()
    text = caplog.text
    assert "copier started" in text
    for account in (account_of(follower),):
        api_key = account.api_key()
        assert api_key is not None and api_key.reveal() not in text
        token = account.session.session_token_encrypted
        assert token and token not in text
    from trading.brokers import sessions

    assert sessions.session_for(account=account_of(follower)).token.reveal() not in text


def test_the_rate_governor_spaces_a_burst_of_freeze_legs(make_world, settings):
    world = make_world(
        {
            "lot_multiplier": Decimal("20"),
            "max_quantity": 100000,
            "max_order_value": Decimal("99999999999999"),
        },
        funds="100000000000",
    )
    (follower,) = world.followers
    world.sbx.update_account(world.client_of(follower), funds="100000000000")
    future = nifty_future(world.sbx)["trading_symbol"]
    world.tick()
    world.place(future, "BUY", 1755)  # 27 lots; the follower 540 lots = 20 legs of 27
    world.tick()
    legs = wait_settled(expect=20)
    assert {c.status for c in legs} == {Status.SUCCESS}
    sent = sorted(c.sent_at for c in legs)
    assert len(sent) == 20
    # no window of one second holds more than 8 of one account's orders on one exchange
    # (sent_at is read just after the governor's wake-up: allow the event loop's jitter)
    for i in range(len(sent) - 8):
        assert (sent[i + 8] - sent[i]).total_seconds() >= 0.98
    placed = sorted(o["placed_at"] for o in world.orders_of(follower))
    assert len(placed) == 20
    assert (sent[-1] - sent[0]).total_seconds() >= 2.0  # 20 legs at 8 per second


def test_the_copier_loads_the_days_contract_master_once(sbx, transactional_db):
    import asyncio

    from trading.engine.config import CopierConfig
    from trading.engine.runner import Copier
    from trading.models import Instrument

    async def load_twice() -> None:
        async with Copier(name="contracts", config=CopierConfig(pnl_refresh=0)) as copier:
            await copier.refresh_contracts()
            first = await copier.db(lambda: Instrument.objects.count())
            await copier.refresh_contracts()  # fresh today: nothing downloaded again
            assert await copier.db(lambda: Instrument.objects.count()) == first

    asyncio.run(load_twice())
    infy = Instrument.objects.get(exchange="NSE", trading_symbol="INFY-EQ")
    assert infy.lot_size == 1
    nifty = Instrument.objects.filter(exchange="NFO", symbol="NIFTY", instrument_type="FUTIDX")
    assert nifty.exists() and {i.lot_size for i in nifty} == {65}
    assert {i.freeze_quantity for i in nifty} == {1800}
