"""The lifecycle engine against the real sandbox broker: the engine tests' world (a master and
followers on fresh sandbox accounts, the real copier) and a few lifecycle helpers."""

from __future__ import annotations

from typing import Any

from accounts.models import BrokerAccount
from copytrade.lib.secret import Secret
from tests.engine.conftest import make_world, sbx  # noqa: F401  (the engine's fixtures)
from trading.brokers import sessions
from trading.brokers.aliceblue import protocol
from trading.brokers.aliceblue.transport import SyncTransport


def connect_oauth(broker: Any, account: BrokerAccount) -> None:
    """What the owner's AliceBlue sign-in (OAuth) does: a fresh Open API session stored for
    the account (the sandbox's login page gives the auth code; it counts as the daily
    sign-in)."""
    BrokerAccount.objects.filter(pk=account.pk).update(login_method="oauth")
    account.refresh_from_db()
    transport = SyncTransport()
    try:
        grant = transport.run(
            protocol.open_api_session_call(
                sessions.endpoints(),
                user_id=account.client_id,
                auth_code=broker.auth_code(account.client_id),
                api_secret=Secret(broker.vendor_app.api_secret),
            )
        )
    finally:
        transport.close()
    sessions._store_grant(account=account, grant=grant, method="oauth", actor=None, request=None)
