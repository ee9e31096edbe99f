"""The seed's checklist in a real browser (issue 6), against the whole product: gunicorn from
the Procfile, the sandbox broker and the copier as real processes on the test database.

The master logs in with its second factor, registers two followers with different multipliers
through the dialog (each on a fresh sandbox account) and copies their one-time logins; invalid
input shows errors; a follower logs in with what was copied; the master places a manual copy
trade; within 7 s (one 5 s poll plus margin) each follower's board shows it with quantity =
master quantity times its multiplier, the statistics count it and the badge has its colour; a
follower cannot open another follower's data.

`COPYTRADE_SCREENSHOTS=docs/screenshots` also saves screenshots of both dashboards there.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accounts import services
from accounts.models import BrokerAccount, Follower
from tests.e2e import conftest as e2e
from tests.liveserver import LiveServer, web_server
from trading.models import BrokerSession

pytestmark = pytest.mark.e2e

SUCCESS_BADGE = "rgb(232, 245, 233)"  # .badge-SUCCESS background (static/css/app.css)
PENDING_BADGES = {"rgb(238, 242, 255)", "rgb(224, 242, 254)"}  # PENDING, SENDING


@pytest.fixture(scope="module")
def sandbox_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from sandbox.testing import SandboxProcess

    with SandboxProcess(tmp_path_factory.mktemp("sandbox") / "sandbox.sqlite3") as sbx:
        sbx.set_price("NSE", "INFY-EQ", "1500")
        yield sbx


def sandbox_env(sbx: Any) -> dict[str, str]:
    return {
        "ALICEBLUE_BROKER": "sandbox",
        "SANDBOX_STATE_PATH": str(sbx.state_path),
        "SANDBOX_URL": sbx.url,
        "ALICEBLUE_OPEN_API_URL": sbx.url,
        "ALICEBLUE_ANT_API_URL": sbx.url,
        "ALICEBLUE_LOGIN_URL": sbx.url + "/",
        "ALICEBLUE_CONTRACT_URL": sbx.contract_url,
        "ALICEBLUE_ORDER_WS_URL": sbx.order_ws_url("g3"),
        "ALICEBLUE_ANT_ORDER_WS_URL": sbx.order_ws_url("g2"),
    }


@pytest.fixture(scope="module")
def _live_server(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory, sandbox_process: Any
) -> Iterator[LiveServer]:
    """This module's web server talks to this module's sandbox process."""
    with web_server(tmp_path_factory.mktemp("web"), env=sandbox_env(sandbox_process)) as server:
        yield server


def master_logs_in_with_totp(page, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    e2e.log_in(page, username, password)
    page.wait_for_url(re.compile(r"/accounts/2fa/enrol/"))
    secret = page.locator("#totp-secret").inner_text()
    page.locator('input[name="token"]').fill(e2e.totp_now(secret))
    page.get_by_role("button", name="Confirm and continue").click()
    page.get_by_role("link", name=re.compile("I have saved them")).click()
    page.wait_for_url(re.compile(r"/master/$"))


def register_in_dialog(page, name: str, multiplier: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    page.get_by_role("link", name="Register a follower").click()
    dialog = page.locator("#register-dialog")
    dialog.locator("#follower-register-form").wait_for()
    assert dialog.evaluate("d => d.open")
    dialog.get_by_role("button", name=re.compile("fresh sandbox account")).click()
    dialog.get_by_role("button", name="Use it in the form").click()
    form = dialog.locator("#follower-register-form")
    assert form.locator('input[name="client_id"]').input_value()
    form.get_by_label("Display name").fill(name)
    form.get_by_label("Lot multiplier").fill(multiplier)
    form.get_by_label("Max quantity per trade").fill("1000")
    form.get_by_label("Max order value (INR)").fill("1000000")
    form.get_by_label("Max daily loss (INR)").fill("50000")
    form.get_by_role("button", name="Register follower").click()
    username_box = dialog.locator("#login-username")
    username_box.wait_for()
    username = username_box.input_value()
    password = dialog.locator("#login-password").input_value()
    # copy to the clipboard as a person would, and read it back
    dialog.locator('[data-copy-target="login-password"]').click()
    dialog.locator('[data-copy-target="login-password"]', has_text="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == password
    dialog.get_by_role("button", name="Close").click()
    # closing leaves no one-time password behind in the page
    dialog.locator("#login-password").wait_for(state="detached", timeout=2_000)
    assert password not in page.content()
    return username, password


def test_master_registers_two_followers_and_a_follower_logs_in(
    browser, live, master_x, sandbox_process
):
    # a master with only a password: the first login enrols the authenticator app
    boss, _ = services.create_master(username="boss")
    password = e2e.browser_password(boss.user)
    context = browser.new_context(base_url=live.url, viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    contexts = [context]
    try:
        master_logs_in_with_totp(page, "boss", password)

        # invalid input shows errors next to the fields, and nothing is saved
        page.get_by_role("link", name="Register a follower").click()
        form = page.locator("#register-dialog #follower-register-form")
        form.wait_for()
        form.get_by_label("Lot multiplier").fill("0")
        form.get_by_role("button", name="Register follower").click()
        page.locator("#register-dialog .has-error").first.wait_for()
        assert page.locator("#register-dialog .has-error").count() >= 2
        assert not Follower.objects.filter(master=boss).exists()
        page.locator("#register-dialog").get_by_role("button", name="Close").click()

        alpha = register_in_dialog(page, "Alpha Trader", "1")
        beta = register_in_dialog(page, "Beta Trader", "2")
        followers = {f.display_name: f for f in Follower.objects.filter(master=boss)}
        assert followers["Alpha Trader"].lot_multiplier == 1
        assert followers["Beta Trader"].lot_multiplier == 2
        # closing the dialog refreshed the follower list
        page.locator(f'[data-follower="{beta[0]}"]').wait_for()
        assert page.locator(f'[data-follower="{alpha[0]}"]').count() == 1

        # each follower logs in with the copied login and sees its own, empty board
        boards = {}
        for name, (username, secret) in (("Alpha Trader", alpha), ("Beta Trader", beta)):
            follower_context = browser.new_context(
                base_url=live.url, viewport={"width": 1280, "height": 900}
            )
            follower_context.set_default_timeout(15_000)
            contexts.append(follower_context)
            board = follower_context.new_page()
            e2e.log_in(board, username, secret)
            board.wait_for_url(re.compile(r"/board/$"))
            assert "No copy trades yet" in board.content()
            boards[name] = board
        alpha_board = boards["Alpha Trader"]
        beta_follower = followers["Beta Trader"]
        other = alpha_board.context.new_page()
        assert other.goto(f"/accounts/followers/{beta_follower.pk}/").status in (403, 404)
        assert other.goto("/master/").status == 403
        other.close()

        # the copier runs (a real process, on this database and the sandbox)
        copy_manual_trade_and_watch_the_boards(page, boards, boss, followers, sandbox_process)
    finally:
        for each in contexts:
            each.close()


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def copy_manual_trade_and_watch_the_boards(  # type: ignore[no-untyped-def]
    page, boards, boss, followers, sbx
) -> None:
    from tests.engine.conftest import load_instrument
    from tests.engine.processes import CopierProcess

    load_instrument(sbx, "NSE", "INFY-EQ")
    own = sbx.create_account(daily_login=True)
    account = BrokerAccount(owner=boss.user, master=boss, client_id=own.client_id)
    account.set_api_key(own.api_key)
    account.save()
    copier = CopierProcess(sbx, name="copier")
    try:
        copier.wait_ready(timeout=60)
        accounts = [BrokerAccount.objects.get(owner=f.user) for f in followers.values()]
        wait_until(
            lambda: (
                BrokerSession.objects.filter(account__in=accounts, state="ready").count()
                == len(accounts)
            ),
            45,
            "the copier to log the followers in",
        )

        # the master's manual copy trade, through the dialog
        page.get_by_role("link", name="Manual copy trade").click()
        dialog = page.locator("#manual-dialog")
        form = dialog.locator("#manual-copy-form")
        form.wait_for()
        form.get_by_label("Quantity").fill("0")  # invalid first: the error is shown
        form.get_by_label("Symbol").fill("INFY-EQ")
        form.get_by_role("button", name="Copy to every active follower").click()
        dialog.locator("#manual-copy-form .has-error").first.wait_for()
        form = dialog.locator("#manual-copy-form")
        form.get_by_label("Quantity").fill("10")
        form.get_by_label("Symbol").fill("INFY-EQ")
        form.get_by_label("Side").select_option("BUY")
        form.get_by_label("Order type").select_option("MARKET")
        form.get_by_label("Product").select_option("MIS")
        form.get_by_role("button", name="Copy to every active follower").click()
        dialog.locator("[data-manual-recorded]").wait_for()
        placed = time.monotonic()
        dialog.get_by_role("button", name="Close").click()

        # within one poll (plus margin) each board shows it, sized by its multiplier
        for name, quantity in (("Alpha Trader", 10), ("Beta Trader", 20)):
            board = boards[name]
            left = max(0.5, 7.0 - (time.monotonic() - placed))
            row = board.locator("tbody tr", has_text="INFY-EQ")
            row.wait_for(timeout=left * 1000)
            assert time.monotonic() - placed < 7.0, f"{name}'s board took too long"
            assert row.locator('[data-field="follower-qty"]').inner_text() == str(quantity)
            assert row.locator('[data-field="master-qty"]').inner_text() == "10"

        for name, board in boards.items():
            # the copy settles at the broker; the next poll shows it, counted and coloured
            board.locator("tbody tr .badge-SUCCESS").wait_for(timeout=15_000)
            badge = board.locator("tbody tr .badge-SUCCESS").first
            assert badge.inner_text() == "Success"
            assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == SUCCESS_BADGE
            assert int(board.locator('[data-stat="today-total"] dd').inner_text()) == 1
            assert int(board.locator('[data-stat="today-successful"] dd').inner_text()) == 1
            assert board.locator("tbody tr").count() == 1, name

        # the master sees the order with each follower's outcome
        summary = page.locator("ul.orders details summary", has_text="INFY-EQ").first
        summary.wait_for(timeout=10_000)
        page.locator("ul.orders .badge-SUCCESS", has_text="2 sent").first.wait_for(timeout=10_000)
        summary.click()
        shots = os.environ.get("COPYTRADE_SCREENSHOTS")
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.reload()  # the account panel too (the master linked its account meanwhile)
            page.locator("ul.orders details summary", has_text="INFY-EQ").first.click()
            page.wait_for_timeout(300)
            page.screenshot(path=str(Path(shots) / "master-dashboard.png"), full_page=True)
            boards["Beta Trader"].screenshot(
                path=str(Path(shots) / "follower-board.png"), full_page=True
            )
    finally:
        copier.stop()
