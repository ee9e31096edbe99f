"""Answer interpretation: every unexpected answer becomes a typed error with a short, scrubbed
excerpt; "no data" codes become empty lists; order calls without a usable answer are
ambiguous. Pure unit tests on the sans-IO layer."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import pytest

from copytrade.lib.secret import Secret
from trading.brokers.aliceblue import mapping, protocol
from trading.brokers.aliceblue.errors import (
    AmbiguousOrder,
    BrokerUnavailable,
    LoginRejected,
    NeedsDailyLogin,
    PushNotEnabled,
    RateLimited,
    Rejected,
    SessionExpired,
)
from trading.brokers.aliceblue.protocol import AntApi, Endpoints, OpenApi, Raw, interpret
from trading.brokers.aliceblue.types import OrderRequest, OrderStatus, OrderType, Product, Side

EP = Endpoints("http://h", "http://h", "http://h/", "ws://h/a", "ws://h/b")
SESSION = "eyJhbGciOiJSUzI1NiJ9.SECRETPAYLOAD.SIGNATURE0123"
G3 = OpenApi(endpoints=EP, client_id="AB1234", session=Secret(SESSION))
G2 = AntApi(endpoints=EP, client_id="AB1234", session=Secret(SESSION))
ORDER = OrderRequest(
    exchange="NSE",
    token="1594",
    trading_symbol="INFY-EQ",
    side=Side.BUY,
    quantity=1,
    order_type=OrderType.MARKET,
    product=Product.MIS,
    tag="ct-1-2-0",
)


def raw(status: int, body: object, headers: dict[str, str] | None = None) -> Raw:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Raw(status=status, headers=headers or {}, body=data)


@pytest.mark.parametrize("api", [G3, G2], ids=["open", "ant"])
def test_http_401_is_session_expired(api):
    with pytest.raises(SessionExpired):
        interpret(api.order_book(), raw(401, b"Unauthorized"))


def test_ec087_is_session_expired_in_every_envelope_variant():
    for body in (
        {"status": "Not_Ok", "message": "EC087", "infoMessage": None, "result": None},
        {"status": "EC087"},
        {"stat": "Not_Ok", "emsg": "EC087 Session Expired"},
    ):
        with pytest.raises(SessionExpired):
            interpret(G3.positions(), raw(200, body))


@pytest.mark.parametrize(
    ("build", "code"),
    [
        (lambda: G3.order_book(), "EC916"),
        (lambda: G3.positions(), "EC920"),
        (lambda: G3.holdings(), "EC922"),
        (lambda: G3.trade_book(), "EC926"),
    ],
)
def test_open_api_no_data_codes_are_empty_lists(build, code):
    assert interpret(build(), raw(200, {"status": "Not_Ok", "message": code})) == []
    assert interpret(build(), raw(200, {"status": code})) == []


def test_ant_no_data_is_an_empty_list():
    assert interpret(G2.order_book(), raw(200, {"stat": "Not_Ok", "emsg": "No Data"})) == []
    assert interpret(G2.trade_book(), raw(200, [{"stat": "Not_ok", "Emsg": "No Data"}])) == []


def test_open_api_business_error_is_rejected_with_code():
    with pytest.raises(Rejected) as caught:
        interpret(G3.place_order(ORDER), raw(200, {"status": "Not_Ok", "message": "EC930"}))
    assert caught.value.code == "EC930"


def test_open_api_ack_with_failed_element_is_rejected():
    body = {"status": "Ok", "result": [{"status": "Not_Ok", "message": "EC912 failed"}]}
    with pytest.raises(Rejected) as caught:
        interpret(G3.place_order(ORDER), raw(200, body))
    assert caught.value.code == "EC912"


def test_open_api_ok_ack_without_order_id_is_ambiguous():
    body = {"status": "Ok", "result": [{"brokerOrderId": "", "requestTime": ""}]}
    with pytest.raises(AmbiguousOrder) as caught:
        interpret(G3.place_order(ORDER), raw(200, body))
    assert caught.value.tag == "ct-1-2-0"


def test_ant_rejection_keeps_the_brokers_text():
    body = [{"stat": "Not_Ok", "emsg": "Margin shortfall"}]
    with pytest.raises(Rejected) as caught:
        interpret(G2.place_order(ORDER), raw(200, body))
    assert caught.value.message == "Margin shortfall"


def test_ant_amo_ack_suffix_is_split_off():
    body = [{"stat": "Ok", "NOrdNo": "220909000171690-after market order req received"}]
    ack = interpret(G2.place_order(ORDER), raw(200, body))
    assert ack.broker_order_id == "220909000171690"
    assert ack.note == "after market order req received"


def test_429_is_rate_limited_with_retry_after():
    with pytest.raises(RateLimited) as caught:
        interpret(G3.order_book(), raw(429, b"slow down", {"retry-after": "3"}))
    assert caught.value.retry_after == 3.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_on_an_order_is_ambiguous_and_on_a_query_unavailable(status):
    with pytest.raises(AmbiguousOrder) as caught:
        interpret(G3.place_order(ORDER), raw(status, b"<html>Bad gateway</html>"))
    assert caught.value.tag == "ct-1-2-0"
    assert caught.value.status_code == status
    with pytest.raises(BrokerUnavailable) as unavailable:
        interpret(G3.order_book(), raw(status, b"<html>Bad gateway</html>"))
    assert unavailable.value.status_code == status


@pytest.mark.parametrize(
    "body",
    [b"<html><body>Login</body></html>", b'{"status": "Ok", "result": [{"brokerOr', b"", b"[]"],
)
def test_garbage_on_an_order_call_is_ambiguous_never_a_raw_exception(body):
    for api in (G3, G2):
        with pytest.raises(AmbiguousOrder):
            interpret(api.place_order(ORDER), raw(200, body))
        with pytest.raises(AmbiguousOrder):
            interpret(api.cancel_order("123456789"), raw(200, body if body != b"[]" else b"x"))


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"{", b'{"status":"Ok","result":"x"}'])
def test_garbage_on_a_query_is_broker_unavailable_with_excerpt(body):
    with pytest.raises(BrokerUnavailable) as caught:
        interpret(G3.order_book(), raw(200, body))
    assert len(caught.value.excerpt) <= 201


def test_a_row_missing_its_key_never_raises_key_error():
    body = {"status": "Ok", "result": [{"orderStatus": "OPEN"}]}
    with pytest.raises(BrokerUnavailable):
        interpret(G3.order_book(), raw(200, body))


def test_html_4xx_on_an_order_is_a_rejection_not_ambiguous():
    with pytest.raises(Rejected) as caught:
        interpret(G3.place_order(ORDER), raw(404, b"<html>Not found</html>"))
    assert caught.value.code == "HTTP404"


def test_empty_ws_token_answer_is_push_not_enabled():
    for api in (G3, G2):
        with pytest.raises(PushNotEnabled):
            interpret(api.ws_token(), raw(200, b""))
    with pytest.raises(PushNotEnabled):
        interpret(G3.ws_token(), raw(200, {"status": "Ok", "result": [{"orderToken": ""}]}))


def test_user_does_not_login_is_needs_daily_login():
    call = protocol.ant_enc_key_call(EP, user_id="AB1234")
    with pytest.raises(NeedsDailyLogin) as caught:
        interpret(call, raw(200, {"stat": "Not_Ok", "emsg": "User does not login", "encKey": None}))
    assert caught.value.message == "User does not login"
    sid = protocol.ant_session_call(
        EP, user_id="AB1234", api_key=Secret("k" * 30), enc_key=Secret("e" * 20)
    )
    with pytest.raises(LoginRejected):
        interpret(sid, raw(200, {"stat": "Not_Ok", "emsg": "Your API key Expired"}))


def test_invalid_auth_code_is_login_rejected():
    call = protocol.open_api_session_call(
        EP, user_id="AB1234", auth_code="abc", api_secret=Secret("s" * 30)
    )
    with pytest.raises(LoginRejected) as caught:
        interpret(call, raw(200, {"stat": "Not_ok", "emsg": "Invalid auth code"}))
    assert caught.value.message == "Invalid auth code"


def test_open_api_alternative_login_shape_is_accepted():
    call = protocol.open_api_session_call(
        EP, user_id="AB1234", auth_code="abc", api_secret=Secret("s" * 30)
    )
    grant = interpret(call, raw(200, {"status": "Ok", "result": [{"accessToken": "tok" * 5}]}))
    assert grant.token.reveal() == "tok" * 5 and grant.client_id == "AB1234"


def test_no_secret_in_error_strings_even_when_the_broker_echoes_it():
    body = json.dumps({"status": "Not_Ok", "message": f"EC912 bad session {SESSION}"}).encode()
    with pytest.raises(Rejected) as caught:
        interpret(G3.place_order(ORDER), Raw(200, {}, body))
    assert "SECRETPAYLOAD" not in str(caught.value)
    with pytest.raises(BrokerUnavailable) as unavailable:
        interpret(G3.order_book(), Raw(502, {}, f"Authorization: Bearer {SESSION}".encode()))
    assert "SECRETPAYLOAD" not in str(unavailable.value)


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("open", OrderStatus.OPEN),
        ("OPEN", OrderStatus.OPEN),
        ("trigger pending", OrderStatus.TRIGGER_PENDING),
        ("TRIGGER PENDING", OrderStatus.TRIGGER_PENDING),
        ("TRIGGER_PENDING", OrderStatus.TRIGGER_PENDING),
        ("complete", OrderStatus.COMPLETE),
        ("COMPLETE", OrderStatus.COMPLETE),
        ("rejected", OrderStatus.REJECTED),
        ("CANCELED", OrderStatus.CANCELLED),
        ("cancelled", OrderStatus.CANCELLED),
        ("cancelled after market order", OrderStatus.CANCELLED),
        ("after market order req received", OrderStatus.AMO_RECEIVED),
        ("modify after market order req received", OrderStatus.AMO_RECEIVED),
        ("AMO_RECEIVED", OrderStatus.AMO_RECEIVED),
        ("validation pending", OrderStatus.PENDING),
        ("put order req received", OrderStatus.PENDING),
        ("PENDING", OrderStatus.PENDING),
        ("modify pending", OrderStatus.PENDING),
        ("something new", OrderStatus.UNKNOWN),
    ],
)
def test_every_status_spelling_maps(spelling, expected):
    assert mapping.parse_status(spelling) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("MARKET", OrderType.MARKET),
        ("MKT", OrderType.MARKET),
        ("L", OrderType.LIMIT),
        ("LMT", OrderType.LIMIT),
        ("SL", OrderType.SL),
        ("SL-LMT", OrderType.SL),
        ("SLM", OrderType.SLM),
        ("SL-M", OrderType.SLM),
        ("SL-MKT", OrderType.SLM),
    ],
)
def test_order_type_spellings(value, expected):
    assert mapping.parse_order_type(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("INTRADAY", Product.MIS),
        ("LONGTERM", Product.CNC),
        ("DELIVERY", Product.CNC),
        ("NORMAL", Product.NRML),
        ("NRML", Product.NRML),
        ("MIS", Product.MIS),
        ("I", Product.MIS),
        ("C", Product.CNC),
        ("M", Product.NRML),
    ],
)
def test_product_spellings(value, expected):
    assert mapping.parse_product(value) is expected


def test_times_parse_to_aware_ist():
    for value in (
        "26-May-2025 11:42:10",
        "27/11/2026 06:47:35",
        "2025-05-26 14:27:43",
        "Nov 27 2026 06:47:36",
        "17:21:21 26-05-2025",
        1795762056,
        "1795762056000",
    ):
        parsed = protocol.when(value)
        assert parsed is not None and parsed.utcoffset() is not None, value
    assert protocol.when("--") is None and protocol.when("NA") is None


def test_wire_price_has_no_exponent_or_trailing_zeros():
    assert protocol.wire_price(Decimal("1400.00")) == "1400"
    assert protocol.wire_price(Decimal("1450.50")) == "1450.5"
    assert protocol.wire_price(Decimal("0.05")) == "0.05"
    assert protocol.wire_price(None) == ""


def test_order_request_validates_itself():
    with pytest.raises(ValueError, match="needs a price"):
        dataclasses.replace(ORDER, order_type=OrderType.LIMIT)
    with pytest.raises(ValueError, match="needs a trigger"):
        dataclasses.replace(ORDER, order_type=OrderType.SLM)
    with pytest.raises(ValueError, match="positive"):
        dataclasses.replace(ORDER, quantity=0)
    with pytest.raises(ValueError, match="50"):
        dataclasses.replace(ORDER, tag="x" * 51)
