"""Nothing secret is written to a log line or stored readable, through every flow that handles
secrets: registration, credential changes, password reset, deactivation, key rotation, a
failed login and a second-factor check. Every logger is captured at DEBUG, SQL included."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import BrokerAccount, User
from tests.conftest import login

API_KEY = "LeakCanaryApiKey-7f3a9c1e5b2d8f40"
APP_CODE = "LeakCanaryApp99"
API_SECRET = "LeakCanarySecret-0e4d2c6b8a1f3579"
NEW_API_KEY = "LeakCanaryRotated-11aa22bb33cc44dd"


@pytest.mark.django_db
def test_no_secret_reaches_any_log_or_a_readable_column(client: Client, master_x, caplog, settings):
    caplog.set_level(logging.DEBUG)
    for name in ("django.db.backends", "axes", "django.request", "django_otp"):
        caplog.set_level(logging.DEBUG, logger=name)
    connection.force_debug_cursor = True  # log every SQL statement with its parameters
    try:
        login(client, master_x.user)
        registered = client.post(
            reverse("accounts:follower_register"),
            {
                "display_name": "Canary",
                "client_id": "CN0001",
                "login_method": "api_key",
                "api_key": API_KEY,
                "app_code": APP_CODE,
                "api_secret": API_SECRET,
                "lot_multiplier": "1",
                "max_quantity": "10",
                "max_order_value": "1000",
                "max_daily_loss": "100",
                "allowed_product_types": ["MIS"],
            },
        )
        assert registered.status_code == 200
        password = registered.context["password"]
        follower = User.objects.get(username=registered.context["username"]).follower

        # A bad credential change (errors must not echo the value) and a good one.
        bad_key = "bad key with spaces " + API_KEY
        url = reverse("accounts:follower_credentials", args=[follower.pk])
        assert (
            client.post(
                url, {"client_id": "CN0001", "login_method": "api_key", "api_key": bad_key}
            ).status_code
            == 422
        )
        assert (
            client.post(
                url, {"client_id": "CN0001", "login_method": "api_key", "api_key": NEW_API_KEY}
            ).status_code
            == 302
        )

        reset = client.post(
            reverse("accounts:follower_reset_password", args=[follower.pk]), {"confirm": "on"}
        )
        new_password = reset.context["password"]

        # Failed logins (django-axes logs them) and a wrong second-factor code.
        Client().post(
            reverse("accounts:login"), {"username": follower.user.username, "password": password}
        )
        Client().post(reverse("accounts:login"), {"username": "master_x", "password": new_password})

        settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode(), *settings.CREDENTIAL_KEYS]
        call_command("rotate_credentials")
        account = BrokerAccount.objects.get(client_id="CN0001")
        raw = BrokerAccount.objects.filter(pk=account.pk).values().get()

        client.post(reverse("accounts:follower_deactivate", args=[follower.pk]), {"confirm": "on"})
    finally:
        connection.force_debug_cursor = False

    secrets = [API_KEY, APP_CODE, API_SECRET, NEW_API_KEY, password, new_password]
    assert any("INSERT" in r.getMessage() for r in caplog.records), "SQL was not captured"
    for record in caplog.records:
        text = record.getMessage() + str(record.args or "") + str(getattr(record, "ctx", ""))
        for secret in secrets:
            assert secret not in text, (secret[:6], record.name, text[:200])
    # Stored columns hold ciphertext or hashes, never the values.
    stored = " ".join(str(v) for v in raw.values())
    for secret in (APP_CODE, API_SECRET, NEW_API_KEY):
        assert secret not in stored
    assert raw["api_key_hint"] == NEW_API_KEY[-4:]
    for row in User.objects.values_list("password", flat=True):
        assert password not in row and new_password not in row
