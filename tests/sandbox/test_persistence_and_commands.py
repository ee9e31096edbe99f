"""State survives a restart; management commands change a running server (another process)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from sandbox.store import Store, vendor_app
from sandbox.testing import SandboxProcess, SandboxServer
from tests.sandbox.helpers import g3, g3_login

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_orders_trades_positions_and_accounts_survive_a_restart(tmp_path):
    path = tmp_path / "state.sqlite3"
    with SandboxServer(path) as first:
        acct = first.create_account(daily_login=True)
        first.set_price("NSE", "INFY-EQ", "1500")
        first.place_order(acct.client_id, "NSE", "INFY-EQ", "BUY", 3, tag="keep")
        resting = first.place_order(
            acct.client_id, "NSE", "INFY-EQ", "BUY", 1, order_type="LIMIT", price="1400"
        )
        headers = g3_login(first, acct)
        app = first.vendor_app
    with SandboxServer(path) as second:
        assert second.vendor_app == app
        orders = second.orders(acct.client_id)
        assert [o["tag"] for o in orders] == ["keep", ""]
        assert second.positions(acct.client_id)[0]["net_quantity"] == 3
        assert g3(second, "GET", "orders/book", headers).json()["status"] == "Ok"  # session kept
        second.set_price("NSE", "INFY-EQ", "1400")  # the resting limit still matches
        assert second.orders(acct.client_id)[1]["status"] == "COMPLETE"
        assert second.orders(acct.client_id)[1]["order_no"] == resting["order_no"]
        fresh = second.place_order(acct.client_id, "NSE", "INFY-EQ", "SELL", 1)
        assert int(fresh["order_no"]) > int(resting["order_no"])


def test_account_commands_print_json_and_record_the_daily_login(tmp_path):
    state = str(tmp_path / "cmd.sqlite3")
    created = manage("sandbox_account", "--state", state, "create", "fa0001", "--funds", "250000")
    assert created.returncode == 0, created.stderr
    data = json.loads(created.stdout)
    assert data["client_id"] == "FA0001" and data["funds"] == "250000"
    assert set(data) >= {"client_id", "password", "api_key", "app_code", "api_secret"}
    shown = json.loads(manage("sandbox_account", "--state", state, "show", "FA0001").stdout)
    assert shown == data
    assert data["app_code"] == vendor_app(state).app_code
    duplicate = manage("sandbox_account", "--state", state, "create", "FA0001")
    assert duplicate.returncode != 0 and "already exists" in duplicate.stderr
    login = manage("sandbox_account", "--state", state, "login", "FA0001")
    assert login.returncode == 0 and "signed in" in login.stdout
    store = Store(state)
    try:
        from sandbox.clock import Clock

        assert "FA0001" in store.daily_logins(Clock().today())
    finally:
        store.close()
    missing = manage("sandbox_account", "--state", state, "show", "NOBODY")
    assert missing.returncode != 0 and "no sandbox account" in missing.stderr


def test_commands_change_a_running_server_within_a_second(tmp_path):
    state = tmp_path / "live.sqlite3"
    with SandboxServer(state) as sbx:
        acct = sbx.create_account(daily_login=True)
        headers = g3_login(sbx, acct)
        out = manage(
            "sandbox_fault",
            "--state",
            str(state),
            "set",
            "--account",
            acct.client_id,
            "error_rate=1",
            "error_status=500",
        )
        assert out.returncode == 0, out.stderr
        sbx.wait_for(lambda: g3(sbx, "GET", "limits/", headers).status_code == 500, timeout=3)
        manage("sandbox_fault", "--state", str(state), "clear")
        sbx.wait_for(lambda: g3(sbx, "GET", "limits/", headers).status_code == 200, timeout=3)
        manage("sandbox_fault", "--state", str(state), "dialect", "g3_error_envelope=status_code")
        sbx.wait_for(
            lambda: g3(sbx, "GET", "positions", headers).json()["status"] == "EC920", timeout=3
        )
        manage(
            "sandbox_fault", "--state", str(state), "expire-sessions", "--account", acct.client_id
        )
        sbx.wait_for(
            lambda: g3(sbx, "GET", "limits/", headers).json()["status"] == "EC087", timeout=3
        )
        bad = manage("sandbox_fault", "--state", str(state), "set", "nonsense=1")
        assert bad.returncode != 0 and "unknown fault" in bad.stderr
        shown = json.loads(manage("sandbox_fault", "--state", str(state), "show").stdout)
        assert shown["dialect"]["g3_error_envelope"] == "status_code"


def test_the_sandbox_runs_as_its_own_process(tmp_path):
    started = time.monotonic()
    with SandboxProcess(tmp_path / "proc.sqlite3") as proc:
        acct = proc.create_account(daily_login=True)
        order = proc.place_order(acct.client_id, "NSE", "SBIN-EQ", "BUY", 1)
        assert order["status"] == "COMPLETE"
        assert g3(proc, "GET", "orders/book", g3_login(proc, acct)).json()["status"] == "Ok"
    assert time.monotonic() - started < 30
