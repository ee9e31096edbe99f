"""The first `make run`: the master is already linked to a fresh sandbox account whose sign-in
is printed beside the master's password, with two demo followers; after the sign-in on the
sandbox terminal, an order placed there is copied to them."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from django.core.management import call_command

from accounts.models import BrokerAccount, Follower, Master
from sandbox.store import Store
from sandbox.testing import SandboxServer
from tests.engine.conftest import load_instrument
from trading.engine.config import CopierConfig
from trading.engine.runner import Copier
from trading.models import BrokerSession, CopyTrade


@pytest.fixture
def first_run(settings, tmp_path, capsys, transactional_db):
    settings.VAR_DIR = tmp_path
    settings.SANDBOX_STATE_PATH = tmp_path / "sandbox.sqlite3"
    call_command("bootstrap")
    return capsys.readouterr().out


def test_the_first_run_links_the_master_to_a_fresh_sandbox_account(first_run, settings):
    master = Master.objects.get()
    account = BrokerAccount.objects.get(owner=master.user)
    store = Store(settings.SANDBOX_STATE_PATH)
    try:
        sandbox_account = store.account(account.client_id)
    finally:
        store.close()
    assert sandbox_account is not None
    assert account.login_method == "api_key"
    assert account.api_key().reveal() == sandbox_account.api_key
    # printed beside the master's password (and in the private first-run file)
    assert f"client id {account.client_id}, password {sandbox_account.password}" in first_run
    assert "/terminal/" in first_run and "Password: " in first_run
    assert sandbox_account.api_key not in first_run
    text = (settings.VAR_DIR / "first-run.txt").read_text()
    assert sandbox_account.password in text
    demos = list(Follower.objects.filter(master=master).order_by("lot_multiplier"))
    assert [f.lot_multiplier for f in demos] == [Decimal("1"), Decimal("2")]


def test_after_the_terminal_sign_in_an_order_is_copied_to_the_demo_followers(first_run, settings):
    master = Master.objects.get()
    account = BrokerAccount.objects.get(owner=master.user)
    with SandboxServer(settings.SANDBOX_STATE_PATH) as sbx:
        for name, value in {
            "ALICEBLUE_OPEN_API_URL": sbx.url,
            "ALICEBLUE_ANT_API_URL": sbx.url,
            "ALICEBLUE_ORDER_WS_URL": sbx.order_ws_url("g3"),
            "ALICEBLUE_ANT_ORDER_WS_URL": sbx.order_ws_url("g2"),
            "TRADING_ROUND_THE_CLOCK": True,
        }.items():
            setattr(settings, name, value)
        load_instrument(sbx, "NSE", "INFY-EQ")
        sbx.set_price("NSE", "INFY-EQ", "1500")

        async def passes(n: int) -> None:
            async with Copier(name="first-run", config=CopierConfig(pnl_refresh=0)) as copier:
                for _ in range(n):
                    await copier.tick()

        asyncio.run(passes(1))  # the demo followers connect by themselves; the master cannot
        states = dict(BrokerSession.objects.values_list("account__client_id", "state"))
        assert states.get(account.client_id) != "ready"
        assert list(states.values()).count("ready") == 2
        sbx.daily_login(account.client_id)  # what signing in on the terminal does
        asyncio.run(passes(1))  # the master connects, the day's baseline is taken
        assert BrokerSession.objects.get(account=account).state == "ready"
        sbx.place_order(account.client_id, "NSE", "INFY-EQ", "BUY", 3)
        asyncio.run(passes(2))
        quantities = {}
        for follower in Follower.objects.filter(master=master):
            client = BrokerAccount.objects.get(owner=follower.user).client_id
            quantities[follower.display_name] = [o["quantity"] for o in sbx.orders(client)]
    assert quantities == {"Demo follower 1": [3], "Demo follower 2": [6]}
    assert set(CopyTrade.objects.values_list("status", flat=True)) == {"SUCCESS"}
