"""Personas and helpers shared by every test: a master X with followers A and B, a stranger
master Y with follower C, and a staff user. Masters are logged in with a verified second
factor, as the product requires."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Follower, Master, User
from tests.factories import BrokerAccountFactory, FollowerFactory, MasterFactory, UserFactory
from trading.models import Instrument


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def login(client: Client, user: User) -> Client:
    """Log a user in; a master (or staff) also passes the second factor (a confirmed TOTP
    device), as the product requires before any master page or the admin."""
    client.force_login(user)
    if user.needs_second_factor:
        device, _ = TOTPDevice.objects.get_or_create(
            user=user, name="default", defaults={"confirmed": True}
        )
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client


@pytest.fixture
def master_x(db) -> Master:  # type: ignore[no-untyped-def]
    master = MasterFactory(user__username="master_x")
    BrokerAccountFactory(owner=master.user, master=master, client_id="MX0001")
    return master


@pytest.fixture
def master_y(db) -> Master:  # type: ignore[no-untyped-def]
    master = MasterFactory(user__username="master_y")
    BrokerAccountFactory(owner=master.user, master=master, client_id="MY0001")
    return master


@pytest.fixture
def follower_a(master_x: Master) -> Follower:
    follower = FollowerFactory(master=master_x, user__username="fl_alice", display_name="Alice")
    BrokerAccountFactory(owner=follower.user, master=master_x, client_id="FA0001")
    return follower


@pytest.fixture
def follower_b(master_x: Master) -> Follower:
    follower = FollowerFactory(
        master=master_x, user__username="fl_bob", display_name="Bob", lot_multiplier="2"
    )
    BrokerAccountFactory(owner=follower.user, master=master_x, client_id="FB0001")
    return follower


@pytest.fixture
def follower_c(master_y: Master) -> Follower:
    follower = FollowerFactory(master=master_y, user__username="fl_carol", display_name="Carol")
    BrokerAccountFactory(owner=follower.user, master=master_y, client_id="FC0001")
    return follower


@pytest.fixture
def staff(db) -> User:  # type: ignore[no-untyped-def]
    return UserFactory(username="staff", role=User.Role.STAFF, is_staff=True, is_superuser=True)


@pytest.fixture
def client_x(client: Client, master_x: Master) -> Client:
    return login(client, master_x.user)


@pytest.fixture
def infy(db) -> Instrument:  # type: ignore[no-untyped-def]
    """INFY-EQ on NSE in the instrument master, refreshed today."""
    return Instrument.objects.create(
        exchange="NSE",
        token="1594",
        trading_symbol="INFY-EQ",
        symbol="INFY",
        lot_size=1,
        tick_size="0.05",
        refreshed_on=timezone.localdate(),
    )


# The sandbox broker for tests: a session-scoped server, reset before each test that uses it.
from sandbox.testing import sandbox, sandbox_account, sandbox_server  # noqa: E402, F401
