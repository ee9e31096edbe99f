"""The seed's checklist in a real browser (issue 6): the master logs in with its second factor,
registers two followers with different multipliers through the dialog (each on a fresh sandbox
account) and copies their one-time logins; invalid input shows errors; a follower logs in with
what was copied and sees its own board only."""

from __future__ import annotations

import re

import pytest

from accounts import services
from accounts.models import Follower
from tests.e2e import conftest as e2e

pytestmark = pytest.mark.e2e


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
    assert dialog.locator("#login-password").count() == 0
    assert password not in page.content()
    return username, password


def test_master_registers_two_followers_and_a_follower_logs_in(browser, live, master_x):
    # a master with only a password: the first login enrols the authenticator app
    boss, _ = services.create_master(username="boss")
    password = e2e.browser_password(boss.user)
    context = browser.new_context(base_url=live.url, viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
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

        # a follower logs in with the copied login and sees its own, empty board
        follower_context = browser.new_context(base_url=live.url)
        try:
            board = follower_context.new_page()
            e2e.log_in(board, *alpha)
            board.wait_for_url(re.compile(r"/board/$"))
            assert "No copy trades yet" in board.content()
            beta_follower = followers["Beta Trader"]
            assert board.goto(f"/accounts/followers/{beta_follower.pk}/").status in (403, 404)
            assert board.goto("/master/").status == 403
        finally:
            follower_context.close()
    finally:
        context.close()
