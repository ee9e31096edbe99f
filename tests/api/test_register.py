"""POST /api/followers/register-api-key: the foundation's register_follower behind the seed's
curl, with its one-time login in the answer and its field errors in the envelope."""

from __future__ import annotations

import json

import pytest

from accounts import services
from accounts.models import BrokerAccount, Follower
from tests.api.conftest import bearer
from trading.models import AuditEvent

REGISTER = "/api/followers/register-api-key"


def _register(client, master, **fields):  # type: ignore[no-untyped-def]
    body = {
        "clientId": "AB12345",
        "apiKey": "an-api-key-0123456789abcdef",
        "lotMultiplier": "1.5",
        "maxQuantity": 100,
        "maxOrderValue": "250000",
        "maxDailyLoss": "5000",
    } | fields
    return client.post(
        REGISTER, json.dumps(body), content_type="application/json", **bearer(master.user)
    )


def test_register_returns_the_one_time_login(client, master_x):
    response = _register(client, master_x, displayName="Ravi K", allowedProductTypes=["MIS"])
    assert response.status_code == 200, response.content
    assert "no-store" in response["Cache-Control"]
    body = response.json()
    data = body["data"]
    assert body["ok"] is True and body["error"] is None
    assert data["loginUsername"] and data["loginPassword"]
    assert (data["clientId"], data["lotMultiplier"], data["maxQuantity"]) == (
        "AB12345",
        "1.5000",
        100,
    )
    assert data["allowedProductTypes"] == ["MIS"]
    assert "apiKey" not in data and data["apiKeyLast4"] == "cdef"
    follower = Follower.objects.get(pk=data["followerId"])
    assert follower.master == master_x and follower.display_name == "Ravi K"
    assert follower.user.get_username() == data["loginUsername"]
    assert follower.user.check_password(data["loginPassword"])
    assert data["loginPassword"] not in follower.user.password
    account = BrokerAccount.objects.get(owner=follower.user)
    assert "an-api-key" not in account.api_key_encrypted
    assert AuditEvent.objects.filter(master=master_x).exists()


def test_display_name_defaults_to_the_client_id(client, master_x):
    data = _register(client, master_x).json()["data"]
    assert data["displayName"] == "AB12345"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"lotMultiplier": "0"}, "lotMultiplier"),
        ({"lotMultiplier": "-1"}, "lotMultiplier"),
        ({"maxQuantity": 0}, "maxQuantity"),
        ({"allowedProductTypes": ["XYZ"]}, "allowedProductTypes"),
        ({"apiKey": ""}, "apiKey"),
        ({"lotMultiplier": "abc"}, "lotMultiplier"),
        ({"clientId": "x" * 40}, "clientId"),
        ({"apiSecret": "only-the-secret"}, "appCode"),
    ],
)
def test_bad_input_is_a_field_error_and_nothing_is_saved(client, master_x, fields, field):
    before = Follower.objects.count()
    response = _register(client, master_x, **fields)
    assert response.status_code == 400, response.content
    errors = response.json()["error"]["fields"]
    assert field in errors or (field == "appCode" and "apiSecret" in errors), errors
    assert Follower.objects.count() == before


def test_client_id_taken_under_the_same_master(client, master_x, follower_a):
    response = _register(client, master_x, clientId="FA0001")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["clientId"] == [services.CLIENT_ID_TAKEN]


def test_followers_cannot_register(client, follower_a):
    response = client.post(
        REGISTER, "{}", content_type="application/json", **bearer(follower_a.user)
    )
    assert response.status_code == 403
