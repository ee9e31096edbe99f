"""End-to-end tests: Playwright driving Debian's chromium (never a downloaded browser) against
the product served by its real gunicorn (tests/liveserver.py) on the test database.

No chromium? The tests skip, loudly, with the reason, unless COPYTRADE_E2E_REQUIRED is set (CI
sets it): then a missing browser fails them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import TEST_PASSWORD
from tests.liveserver import LiveServer, web_server

CHROMIUM = os.environ.get("COPYTRADE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = os.environ.get("COPYTRADE_E2E_REQUIRED", "").strip().lower() in {"1", "true", "yes"}
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing_browser() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no chromium at {CHROMIUM} (Debian: apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (make install-dev)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing_browser()
    if reason is None or REQUIRED:
        return  # required: the `browser` fixture fails every e2e test with the reason
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=f"END-TO-END SKIPPED: {reason}"))


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Per module, not per session: Playwright's sync API keeps an asyncio loop marked as
    running in this thread while it lives, which would break later tests' asyncio.run()."""
    reason = _missing_browser()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"COPYTRADE_E2E_REQUIRED is set but {reason}")
        pytest.skip(f"END-TO-END SKIPPED: {reason}")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API marks an event loop as running in this thread; the test's own ORM
    # calls are still plain synchronous code between browser steps. Only while it lives.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield from _launch(sync_playwright)
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _launch(sync_playwright: Any) -> Iterator[object]:
    with sync_playwright() as playwright:
        # A fresh profile for every run: Playwright gives each launch its own temporary
        # user-data-dir (it refuses one in `args`); nothing carries over between runs.
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def _live_server(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One server per module: it reads whatever each test committed. Its sandbox-account
    helper writes to a state file of its own, never the developer's var/sandbox.sqlite3."""
    where = tmp_path_factory.mktemp("web")
    env = {"SANDBOX_STATE_PATH": str(where / "sandbox.sqlite3"), "ALICEBLUE_BROKER": "sandbox"}
    with web_server(where, env=env) as server:
        yield server


@pytest.fixture
def live(transactional_db: None, _live_server: LiveServer) -> LiveServer:
    return _live_server


@pytest.fixture
def new_page(browser, live):  # type: ignore[no-untyped-def]
    """A page in its own browser context (own cookies): one per person in the test."""
    contexts = []

    def make():  # type: ignore[no-untyped-def]
        context = browser.new_context(base_url=live.url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def browser_password(user: Any, password: str = TEST_PASSWORD) -> str:
    """Give `user` a password the server process accepts (the suite hashes with MD5, which
    production settings do not list): PBKDF2 with few iterations, quick to make and check."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    user.password = PBKDF2PasswordHasher().encode(password, "e2esalt" + str(user.pk), 1000)
    user.save(update_fields=["password"])
    return password


def log_in(page: Any, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def totp_now(secret: str) -> str:
    """The code an authenticator app shows for `secret` (base32 as the enrolment page prints
    it: grouped by four, unpadded)."""
    import base64

    from django_otp.oath import totp

    key = secret.replace(" ", "").upper()
    key += "=" * (-len(key) % 8)
    return f"{totp(base64.b32decode(key), step=30, t0=0, digits=6):06d}"
