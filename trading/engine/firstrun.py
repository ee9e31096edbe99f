"""The first `make run` in sandbox mode: link the first master to a fresh sandbox account and
give it two demo followers, so a new user can sign in on the sandbox terminal, place an order
and watch it being copied.

    lines = link_sandbox(master)     # [] unless ALICEBLUE_BROKER=sandbox

Works without the sandbox server running (it writes the sandbox's own state file, as
`manage.py sandbox_account create` does). The master's sandbox account is not signed in:
signing in on the terminal is AliceBlue's daily sign-in, after which the copier logs the
account in with its API key on its own (`trading.engine.runner`, automatic API-key login).
The demo followers' sandbox accounts are signed in for today (their "owners" are this
demo); on a later day sign them in with `manage.py sandbox_account login CLIENT_ID`.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from accounts.models import Master

DEMO_FOLLOWERS = (("Demo follower 1", Decimal("1")), ("Demo follower 2", Decimal("2")))


def link_sandbox(master: Master) -> list[str]:
    """Create the sandbox accounts and return the lines to print beside the master's password."""
    if settings.ALICEBLUE_BROKER != "sandbox":
        return []
    from accounts.services import register_follower, save_master_broker_account
    from sandbox.clock import Clock
    from sandbox.store import Store

    store = Store(settings.SANDBOX_STATE_PATH)
    try:
        own = store.create_account(funds="10000000", name="COPYTRADE MASTER")
        save_master_broker_account(
            master=master,
            actor=master.user,
            client_id=own.client_id,
            login_method="api_key",
            api_key=own.api_key,
        )
        demos = []
        for name, multiplier in DEMO_FOLLOWERS:
            account = store.create_account(funds="10000000", name=name.upper())
            store.record_daily_login(account.client_id, Clock().today(), "copytrade first run")
            register_follower(
                master=master,
                actor=master.user,
                display_name=name,
                client_id=account.client_id,
                login_method="api_key",
                api_key=account.api_key,
                lot_multiplier=multiplier,
                max_quantity=1000,
                max_order_value=Decimal("1000000"),
                max_daily_loss=Decimal("50000"),
                allowed_product_types=["MIS", "CNC", "NRML"],
            )
            demos.append(f"{name} (x{multiplier.normalize()}, sandbox {account.client_id})")
    finally:
        store.close()
    return [
        f"Sandbox:  {settings.SANDBOX_URL}/terminal/  (the paper broker's trading terminal)",
        f"          client id {own.client_id}, password {own.password}",
        "          (your master account's broker account; signing in there is AliceBlue's",
        "          daily sign-in, after which the copier connects it by itself)",
        "Followers: " + "; ".join(demos),
        "Place an order on the terminal: it is copied to every demo follower.",
    ]
