"""The JSON API through its real URLs: the envelope, both ways of authenticating, the access
rules, and the cancel that loses cleanly to the copier's claim."""

from __future__ import annotations

import json

import pytest
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client

from api import endpoints
from tests.api.conftest import bearer
from tests.conftest import login
from tests.factories import CopyTradeFactory
from trading import services
from trading.models import AuditEvent, CopyTrade, CopyTradeTransition, FollowerBoard

LIST = "/api/followers/list"
TRADES = "/api/followers/copy-trades"
LOG = "/api/followers/copy-trades-log"
REGISTER = "/api/followers/register-api-key"


def _json(response) -> dict:  # type: ignore[no-untyped-def]
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = json.loads(response.content)
    assert set(body) == {"ok", "message", "data", "error"}
    return body


def _patch(client: Client, body: object, **extra: str):  # type: ignore[no-untyped-def]
    return client.patch(LOG, json.dumps(body), content_type="application/json", **extra)


# --- the envelope and Django's own errors ------------------------------------------------------
def test_unknown_api_path_is_a_json_404(client, db):
    response = client.get("/api/no/such/thing")
    assert response.status_code == 404
    assert _json(response)["error"]["code"] == "not_found"


def test_wrong_method_is_a_json_405(client, follower_a):
    response = client.delete(LIST, **bearer(follower_a.user))
    assert response.status_code == 405
    assert _json(response)["error"]["code"] == "method_not_allowed"
    assert "GET" in response["Allow"]


def test_anonymous_gets_401_json_with_bearer_challenge(client, db):
    response = client.get(LIST)
    assert response.status_code == 401
    body = _json(response)
    assert body["ok"] is False and body["error"]["code"] == "unauthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_malformed_json_is_a_400_not_a_500(client, master_x):
    response = client.post(
        LOG, "{not json", content_type="application/json", **bearer(master_x.user)
    )
    assert response.status_code == 400
    assert _json(response)["ok"] is False


def test_json_that_is_not_an_object_is_a_field_error(client, master_x):
    response = client.post(LOG, "[1, 2]", content_type="application/json", **bearer(master_x.user))
    assert response.status_code == 400
    assert _json(response)["error"]["code"] == "validation_error"


def test_openapi_document_is_generated(client, db):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert set(doc["paths"]) == {LIST, TRADES, LOG, REGISTER}
    assert set(doc["paths"][LOG]) == {"post", "patch"}
    schemas = doc["components"]["schemas"]
    for field in [
        "followerId",
        "loginUsername",
        "clientId",
        "lotMultiplier",
        "maxQuantity",
        "maxOrderValue",
        "maxDailyLoss",
        "allowedInstruments",
        "allowedProductTypes",
    ]:
        assert field in schemas["FollowerOut"]["properties"]
    for field in [
        "id",
        "masterId",
        "followerId",
        "symbol",
        "side",
        "masterQty",
        "followerQty",
        "price",
        "status",
        "timestamp",
        "reason",
    ]:
        assert field in schemas["CopyTradeOut"]["properties"]
    assert {"apiKey", "apiSecret"} <= set(schemas["FollowerRegisterIn"]["properties"])
    assert "apiKey" not in schemas["FollowerOut"]["properties"]


# --- authentication ------------------------------------------------------------------------
def test_bearer_token_authenticates(client, follower_a):
    response = client.get(TRADES, **bearer(follower_a.user))
    assert response.status_code == 200
    assert _json(response)["ok"] is True


def test_revoked_token_is_refused(client, follower_a):
    from api.models import ApiToken
    from api.tokens import issue, revoke

    issued = issue(user=follower_a.user)
    assert revoke(token=ApiToken.objects.get(pk=issued.token.pk))
    response = client.get(TRADES, HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert response.status_code == 401


def test_token_of_a_deactivated_user_is_refused(client, follower_a):
    headers = bearer(follower_a.user)
    follower_a.user.is_active = False
    follower_a.user.save()
    assert client.get(TRADES, **headers).status_code == 401


def test_garbage_bearer_is_401(client, db):
    assert client.get(TRADES, HTTP_AUTHORIZATION="Bearer ct_nope").status_code == 401
    assert client.get(TRADES, HTTP_AUTHORIZATION="Basic abc").status_code == 401


def test_browser_session_reads_without_csrf(client, follower_a):
    login(client, follower_a.user)
    assert client.get(TRADES).status_code == 200


def test_browser_session_writes_need_csrf(follower_a):
    trade = CopyTradeFactory(follower=follower_a)
    browser = Client(enforce_csrf_checks=True)
    login(browser, follower_a.user)
    refused = _patch(browser, {"id": trade.pk, "status": "CANCELLED"})
    assert refused.status_code == 403
    assert _json(refused)["error"]["code"] == "csrf_failed"
    token = _get_new_csrf_string()
    browser.cookies["csrftoken"] = token
    accepted = _patch(browser, {"id": trade.pk, "status": "CANCELLED"}, HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 200, accepted.content


def test_master_session_without_second_factor_is_401(client, master_x):
    client.force_login(master_x.user)  # password only: no verified device in the session
    assert client.get(LIST).status_code == 401
    login(client, master_x.user)  # now with the second factor
    assert client.get(LIST).status_code == 200


# --- followers list ----------------------------------------------------------------------------
def test_master_lists_only_its_followers(client, follower_a, follower_b, follower_c):
    body = _json(client.get(LIST, **bearer(follower_a.master.user)))
    names = {f["loginUsername"] for f in body["data"]}
    assert names == {"fl_alice", "fl_bob"}
    alice = next(f for f in body["data"] if f["loginUsername"] == "fl_alice")
    assert alice["clientId"] == "FA0001"
    assert alice["lotMultiplier"] == "1.0000"
    assert "apiKey" not in alice and len(alice["apiKeyLast4"]) <= 4
    raw = json.dumps(body)
    assert "test-api-key" not in raw


@pytest.mark.parametrize("persona", ["follower_a", "staff"])
def test_followers_list_is_for_masters(client, persona, request):
    obj = request.getfixturevalue(persona)
    user = getattr(obj, "user", obj)
    if persona == "staff":
        response = login(client, user).get(LIST)
        assert response.status_code == 403
    else:
        response = client.get(LIST, **bearer(user))
        assert response.status_code == 403
        assert _json(response)["message"] == endpoints.MASTERS_ONLY


# --- copy trades -------------------------------------------------------------------------------
def test_follower_sees_only_its_own_whatever_it_asks(client, follower_a, follower_b):
    mine = CopyTradeFactory(follower=follower_a)
    CopyTradeFactory(follower=follower_b)
    headers = bearer(follower_a.user)
    for query in ({}, {"followerId": follower_b.pk}, {"followerId": 999999}):
        body = _json(client.get(TRADES, query, **headers))
        assert [t["id"] for t in body["data"]] == [mine.pk]


def test_copy_trade_fields(client, follower_b):
    trade = CopyTradeFactory(follower=follower_b, master_quantity=10, quantity=20, reason="ok")
    row = _json(client.get(TRADES, **bearer(follower_b.user)))["data"][0]
    assert row["id"] == trade.pk
    assert row["masterId"] == follower_b.master.pk
    assert row["followerId"] == follower_b.pk
    assert (row["symbol"], row["side"], row["masterQty"], row["followerQty"]) == (
        "INFY-EQ",
        "BUY",
        10,
        20,
    )
    assert row["price"] == "1500.5000"
    assert row["status"] == "PENDING"
    assert row["timestamp"]


def test_master_sees_its_followers_and_can_filter(client, follower_a, follower_b, follower_c):
    a = CopyTradeFactory(follower=follower_a)
    b = CopyTradeFactory(follower=follower_b, status="FAILED")
    CopyTradeFactory(follower=follower_c)
    headers = bearer(follower_a.master.user)
    assert {t["id"] for t in _json(client.get(TRADES, **headers))["data"]} == {a.pk, b.pk}
    only_b = _json(client.get(TRADES, {"followerId": follower_b.pk}, **headers))["data"]
    assert [t["id"] for t in only_b] == [b.pk]
    failed = _json(client.get(TRADES, {"status": "FAILED"}, **headers))["data"]
    assert [t["id"] for t in failed] == [b.pk]


def test_master_asking_for_a_strangers_follower_gets_404(client, follower_a, follower_c):
    CopyTradeFactory(follower=follower_c)
    response = client.get(TRADES, {"followerId": follower_c.pk}, **bearer(follower_a.master.user))
    assert response.status_code == 404
    assert _json(response)["message"] == endpoints.FOLLOWER_NOT_FOUND


def test_limit_and_before_id_page_back(client, follower_a):
    trades = [CopyTradeFactory(follower=follower_a) for _ in range(5)]
    headers = bearer(follower_a.user)
    first = _json(client.get(TRADES, {"limit": 2}, **headers))["data"]
    assert [t["id"] for t in first] == [trades[4].pk, trades[3].pk]
    second = _json(client.get(TRADES, {"limit": 2, "beforeId": first[-1]["id"]}, **headers))
    assert [t["id"] for t in second["data"]] == [trades[2].pk, trades[1].pk]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "DONE"}, "status"),
        ({"followerId": "x"}, "followerId"),
        ({"beforeId": -1}, "beforeId"),
    ],
)
def test_bad_query_values_are_field_errors(client, follower_a, query, field):
    response = client.get(TRADES, query, **bearer(follower_a.user))
    assert response.status_code == 400
    body = _json(response)
    assert body["error"]["code"] == "validation_error"
    assert field in body["error"]["fields"]


# --- manual copy trade -------------------------------------------------------------------------
def _manual(client, user, **body):  # type: ignore[no-untyped-def]
    payload = {
        "symbol": "INFY-EQ",
        "exchange": "NSE",
        "side": "BUY",
        "quantity": 10,
        "orderType": "LIMIT",
        "price": "1500.5",
        "product": "MIS",
    } | body
    return client.post(LOG, json.dumps(payload), content_type="application/json", **bearer(user))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": "ten"}, "quantity"),
        ({"side": "HOLD"}, "side"),
        ({"exchange": "NYSE"}, "exchange"),
        ({"product": "XYZ"}, "product"),
        ({"price": None}, "price"),
        ({"price": "-1"}, "price"),
        ({"orderType": "MARKET"}, "price"),
        ({"orderType": "SL"}, "triggerPrice"),
        ({"symbol": ""}, "symbol"),
        ({"symbol": "INFY\u0000"}, "symbol"),
        ({"extra": 1}, "extra"),
    ],
)
def test_manual_copy_validates_every_field(client, master_x, change, field):
    response = _manual(client, master_x.user, **change)
    assert response.status_code == 400
    assert field in _json(response)["error"]["fields"], response.content


def test_manual_copy_is_for_masters(client, follower_a):
    assert _manual(client, follower_a.user).status_code == 403


def test_manual_copy_is_recorded_for_the_copier(client, master_x, follower_a, infy):
    from trading.models import MasterOrder

    response = _manual(client, master_x.user, price="1500.5")
    assert response.status_code == 200, response.content
    body = _json(response)
    assert body["message"] == endpoints.MANUAL_RECORDED
    order = MasterOrder.objects.get(pk=body["data"]["masterOrderId"])
    assert order.manual and order.master == master_x and order.quantity == 10
    assert body["data"]["copyTrades"] == []  # the copier decides each follower's copy


def test_manual_copy_of_an_unknown_instrument_is_a_field_error(client, master_x, infy):
    response = _manual(client, master_x.user, symbol="NOPE-EQ")
    assert response.status_code == 400
    assert "symbol" in _json(response)["error"]["fields"]


def test_manual_copy_price_off_the_tick_is_a_field_error(client, master_x, infy):
    response = _manual(client, master_x.user, price="1500.52")
    assert response.status_code == 400
    assert "price" in _json(response)["error"]["fields"]


# --- cancel ------------------------------------------------------------------------------------
def test_cancel_pending_records_transition_audit_and_board(client, follower_a):
    trade = CopyTradeFactory(follower=follower_a)
    version = FollowerBoard.objects.get(follower=follower_a).version
    response = _patch(
        client, {"id": trade.pk, "status": "CANCELLED"}, **bearer(follower_a.master.user)
    )
    assert response.status_code == 200
    assert _json(response)["data"]["status"] == "CANCELLED"
    trade.refresh_from_db()
    assert trade.status == "CANCELLED" and trade.reason_code == services.CANCEL_REASON_CODE
    transition = CopyTradeTransition.objects.get(copy_trade=trade)
    assert (transition.from_status, transition.to_status) == ("PENDING", "CANCELLED")
    audit = AuditEvent.objects.get(action="copy_trade.cancel")
    assert audit.target_id == str(trade.pk) and audit.actor == follower_a.master.user
    assert FollowerBoard.objects.get(follower=follower_a).version > version


def test_follower_may_cancel_its_own_pending_copy(client, follower_a):
    trade = CopyTradeFactory(follower=follower_a)
    assert (
        _patch(
            client, {"id": trade.pk, "status": "CANCELLED"}, **bearer(follower_a.user)
        ).status_code
        == 200
    )


@pytest.mark.parametrize("status", ["SENDING", "SUCCESS", "FAILED", "CANCELLED", "SKIPPED"])
def test_cancel_after_the_claim_is_refused_cleanly(client, follower_a, status):
    trade = CopyTradeFactory(follower=follower_a, status=status)
    response = _patch(client, {"id": trade.pk, "status": "CANCELLED"}, **bearer(follower_a.user))
    assert response.status_code == 409
    assert _json(response)["error"]["code"] == "not_pending"
    assert status in _json(response)["message"]
    trade.refresh_from_db()
    assert trade.status == status
    assert not CopyTradeTransition.objects.filter(copy_trade=trade).exists()
    assert not AuditEvent.objects.filter(action="copy_trade.cancel").exists()


@pytest.mark.parametrize("status", ["SUCCESS", "FAILED", "PENDING", "SENDING"])
def test_any_other_status_change_is_refused(client, follower_a, status):
    trade = CopyTradeFactory(follower=follower_a)
    response = _patch(client, {"id": trade.pk, "status": status}, **bearer(follower_a.user))
    assert response.status_code == 400
    body = _json(response)
    assert body["error"]["code"] == "status_change_refused"
    assert body["message"] == endpoints.ONLY_CANCEL
    trade.refresh_from_db()
    assert trade.status == "PENDING"


def test_cannot_cancel_another_followers_copy(client, follower_a, follower_b, follower_c):
    theirs = CopyTradeFactory(follower=follower_b)
    stranger = CopyTradeFactory(follower=follower_c)
    headers = bearer(follower_a.user)
    for trade in (theirs, stranger):
        assert _patch(client, {"id": trade.pk, "status": "CANCELLED"}, **headers).status_code == 404
    assert (
        _patch(
            client, {"id": stranger.pk, "status": "CANCELLED"}, **bearer(follower_a.master.user)
        ).status_code
        == 404
    )
    assert set(CopyTrade.objects.values_list("status", flat=True)) == {"PENDING"}


def test_cancel_loses_to_a_claim_that_came_first(follower_a):
    trade = CopyTradeFactory(follower=follower_a)
    # the copier's claim
    assert CopyTrade.objects.filter(pk=trade.pk, status="PENDING").update(status="SENDING") == 1
    with pytest.raises(services.CopyTradeNotPending):
        services.cancel_copy_trade(copy_trade_id=trade.pk, actor=follower_a.user)
    trade.refresh_from_db()
    assert trade.status == "SENDING"
