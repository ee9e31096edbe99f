"""The protocol layer against the wire captures of the official SDKs (shared/aliceblue/captures):
our requests match what pya3 (ANT API) and TradeHub (Open API) send — path, method, headers,
body — and their answers parse into the typed vocabulary. Pure: no sockets, no database."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from copytrade.lib.secret import Secret
from trading.brokers.aliceblue import protocol
from trading.brokers.aliceblue.mapping import Dialect, StaticLots
from trading.brokers.aliceblue.protocol import AntApi, Endpoints, OpenApi, Raw, interpret
from trading.brokers.aliceblue.types import (
    Complexity,
    Generation,
    ModifyRequest,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
    Validity,
)


def _find_captures() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "aliceblue" / "captures"
        if candidate.is_dir():
            return candidate
    return Path("/work/shared/aliceblue/captures")


CAPTURES = _find_captures()
pytestmark = pytest.mark.skipif(not CAPTURES.is_dir(), reason="captures not available")

BASE = "http://127.0.0.1:1"
ENDPOINTS = Endpoints(
    open_api=BASE,
    ant_api=BASE,
    login=BASE + "/",
    order_ws="ws://127.0.0.1:1/open-api/order-notify/websocket",
    ant_order_ws="ws://127.0.0.1:1/order-notify/websocket",
)


def _load(name: str) -> dict:
    return json.loads((CAPTURES / name).read_text())


def _requests(capture: dict, label: str) -> list[dict]:
    for call in capture["calls"]:
        if call["label"] == label:
            return [r for r in call["requests"] if r["kind"] == "http"]
    raise KeyError(label)


def _wire(capture: dict, label: str, index: int = 0) -> dict:
    return _requests(capture, label)[index]


def _headers(request: dict) -> dict[str, str]:
    return dict(request["headers"])


def _raw(request: dict) -> Raw:
    return Raw(
        status=request["response_status"],
        headers={},
        body=json.dumps(request["response_body"]).encode(),
    )


@pytest.fixture(scope="module")
def tradehub() -> dict:
    return _load("tradehub-1.1.7.json")


@pytest.fixture(scope="module")
def pya3() -> dict:
    return _load("pya3-1.0.30.json")


def _open(tradehub: dict) -> OpenApi:
    session = tradehub["fake_credentials"]["userSession_served"]
    return OpenApi(endpoints=ENDPOINTS, client_id="AB1234", session=Secret(session))


def _ant(pya3: dict) -> AntApi:
    session = pya3["fake_credentials"]["sessionID_served"]
    return AntApi(endpoints=ENDPOINTS, client_id="ab1234", session=Secret(session))


def _assert_same_request(call: protocol.Call, wire: dict) -> None:
    assert call.method == wire["method"]
    assert urlsplit(call.url).path == wire["path"]
    sent = _headers(wire)
    ours = call.wire_headers()
    assert ours["Authorization"] == sent["Authorization"]
    if "X-SAS-Version" in sent:
        assert ours["X-SAS-Version"] == sent["X-SAS-Version"]
    if wire.get("body_json") is not None:
        assert ours["Content-Type"] == "application/json"
    else:
        assert "Content-Type" not in ours


def _norm_tag(body: object) -> object:
    """TradeHub sends an absent tag as "" or null (both seen); we always send ""."""
    if isinstance(body, list):
        return [_norm_tag(x) for x in body]
    if isinstance(body, dict):
        return {k: ("" if k == "orderTag" and v is None else v) for k, v in body.items()}
    return body


INFY = {"exchange": "NSE", "token": "1594", "trading_symbol": "INFY-EQ"}


# --- Open API (TradeHub 1.1.7) ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("label", "order"),
    [
        (
            "place_market_with_tag",
            OrderRequest(
                **INFY,
                side=Side.BUY,
                quantity=1,
                order_type=OrderType.MARKET,
                product=Product.MIS,
                tag="sbx-mkt-1",
            ),
        ),
        (
            "place_market_no_tag",
            OrderRequest(
                **INFY, side=Side.SELL, quantity=1, order_type=OrderType.MARKET, product=Product.MIS
            ),
        ),
        (
            "place_limit_with_tag",
            OrderRequest(
                **INFY,
                side=Side.BUY,
                quantity=2,
                order_type=OrderType.LIMIT,
                product=Product.MIS,
                price=Decimal("1450.50"),
                tag="sbx-lmt-1",
            ),
        ),
        (
            "place_limit_no_tag",
            OrderRequest(
                **INFY,
                side=Side.BUY,
                quantity=1,
                order_type=OrderType.LIMIT,
                product=Product.MIS,
                price=Decimal("1449.00"),
            ),
        ),
        (
            "place_sl",
            OrderRequest(
                **INFY,
                side=Side.SELL,
                quantity=1,
                order_type=OrderType.SL,
                product=Product.MIS,
                price=Decimal("1400"),
                trigger_price=Decimal("1401.0"),
            ),
        ),
    ],
)
def test_open_api_place_order_matches_tradehub_on_the_wire(tradehub, label, order):
    wire = _wire(tradehub, label)
    call = _open(tradehub).place_order(order)
    _assert_same_request(call, wire)
    assert call.body == _norm_tag(wire["body_json"])
    ack = interpret(call, _raw(wire))
    assert ack.broker_order_id == wire["response_body"]["result"][0]["brokerOrderId"]
    assert ack.request_time is not None and ack.request_time.tzinfo is not None


def test_open_api_modify_cancel_and_history_match_tradehub(tradehub):
    api = _open(tradehub)
    modify = api.modify_order(
        ModifyRequest(
            broker_order_id="260727000000103",
            **INFY,
            side=Side.BUY,
            product=Product.MIS,
            quantity=2,
            order_type=OrderType.LIMIT,
            price=Decimal("1452"),
        )
    )
    wire = _wire(tradehub, "modify_order")
    _assert_same_request(modify, wire)
    assert modify.body == wire["body_json"]
    assert interpret(modify, _raw(wire)).broker_order_id == "260727000000103"

    cancel = api.cancel_order("260727000000103")
    wire = _wire(tradehub, "cancel_order")
    _assert_same_request(cancel, wire)
    assert cancel.body == wire["body_json"]

    history = api.order_history("260727000000103")
    wire = _wire(tradehub, "order_history")
    _assert_same_request(history, wire)
    assert history.body == wire["body_json"]
    rows = interpret(history, _raw(wire))
    assert rows and all(r.broker_order_id == "260727000000103" for r in rows)


@pytest.mark.parametrize(
    ("label", "build"),
    [
        ("profile", lambda api: api.profile()),
        ("funds_limits", lambda api: api.funds()),
        ("positions", lambda api: api.positions()),
        ("holdings_cnc", lambda api: api.holdings()),
        ("order_book", lambda api: api.order_book()),
        ("trade_book", lambda api: api.trade_book()),
        ("ws_order_token", lambda api: api.ws_token()),
    ],
)
def test_open_api_queries_match_tradehub_and_parse(tradehub, label, build):
    wire = _wire(tradehub, label)
    call = build(_open(tradehub))
    _assert_same_request(call, wire)
    assert call.body is None
    result = interpret(call, _raw(wire))
    assert result is not None


def test_open_api_book_rows_are_typed(tradehub):
    wire = _wire(tradehub, "order_book")
    rows = interpret(_open(tradehub).order_book(), _raw(wire))
    assert rows
    for row, src in zip(rows, wire["response_body"]["result"], strict=True):
        assert row.broker_order_id == src["brokerOrderId"]
        assert row.raw_status == src["orderStatus"]
        assert row.status is not OrderStatus.UNKNOWN
        assert row.side in (Side.BUY, Side.SELL)
        assert isinstance(row.quantity, int)
        assert row.average_price is None or isinstance(row.average_price, Decimal)
        assert row.tag == (src.get("orderTag") or "").replace("--", "")


def test_open_api_login_checksum_and_body_match_tradehub(tradehub):
    creds = tradehub["fake_credentials"]
    call = protocol.open_api_session_call(
        ENDPOINTS,
        user_id=creds["user_id_passed"],
        auth_code=creds["auth_code"],
        api_secret=Secret(creds["secret"]),
    )
    wire = _wire(tradehub, "session_login")
    assert call.method == "POST"
    assert urlsplit(call.url).path == wire["path"]
    assert call.body == wire["body_json"]
    assert call.wire_headers()["Authorization"] == ""
    grant = interpret(call, _raw(wire))
    assert grant.generation is Generation.OPEN_API
    assert grant.client_id == "912444"
    assert grant.token.reveal() == creds["userSession_served"]


# --- ANT API (pya3 1.0.30) ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("label", "order"),
    [
        (
            "place_market_with_tag",
            OrderRequest(
                **INFY,
                side=Side.BUY,
                quantity=1,
                order_type=OrderType.MARKET,
                product=Product.MIS,
                tag="sbx-mkt-1",
            ),
        ),
        (
            "place_market_no_tag",
            OrderRequest(
                **INFY, side=Side.SELL, quantity=1, order_type=OrderType.MARKET, product=Product.MIS
            ),
        ),
        (
            "place_limit_no_tag",
            OrderRequest(
                **INFY,
                side=Side.BUY,
                quantity=1,
                order_type=OrderType.LIMIT,
                product=Product.MIS,
                price=Decimal("1449"),
            ),
        ),
        (
            "place_sl_market",
            OrderRequest(
                **INFY,
                side=Side.SELL,
                quantity=1,
                order_type=OrderType.SLM,
                product=Product.MIS,
                trigger_price=Decimal("1401"),
            ),
        ),
        (
            "place_limit_ioc",
            OrderRequest(
                **INFY,
                side=Side.BUY,
                quantity=1,
                order_type=OrderType.LIMIT,
                product=Product.MIS,
                price=Decimal("1450"),
                validity=Validity.IOC,
            ),
        ),
        (
            "place_limit_amo",
            OrderRequest(
                **INFY,
                side=Side.BUY,
                quantity=1,
                order_type=OrderType.LIMIT,
                product=Product.CNC,
                price=Decimal("1450"),
                complexity=Complexity.AMO,
            ),
        ),
        (
            "place_nfo_delivery_maps_to_nrml",
            OrderRequest(
                exchange="NFO",
                token="35001",
                trading_symbol="NIFTY26JULF",
                side=Side.BUY,
                quantity=75,
                order_type=OrderType.MARKET,
                product=Product.CNC,
            ),
        ),
    ],
)
def test_ant_place_order_matches_pya3_on_the_wire(pya3, label, order):
    wire = _wire(pya3, label)
    call = _ant(pya3).place_order(order)
    _assert_same_request(call, wire)
    assert call.body == wire["body_json"]
    assert interpret(call, _raw(wire)).broker_order_id == wire["response_body"][0]["NOrdNo"]


def test_ant_sl_limit_matches_pya3_apart_from_the_tag(pya3):
    wire = _wire(pya3, "place_sl_limit")
    order = OrderRequest(
        **INFY,
        side=Side.SELL,
        quantity=1,
        order_type=OrderType.SL,
        product=Product.MIS,
        price=Decimal("1400"),
        trigger_price=Decimal("1401"),
        tag=wire["body_json"][0]["orderTag"],
    )
    assert _ant(pya3).place_order(order).body == wire["body_json"]


def test_ant_modify_and_cancel_match_pya3(pya3):
    api = _ant(pya3)
    modify = api.modify_order(
        ModifyRequest(
            broker_order_id="260727000000103",
            **INFY,
            side=Side.BUY,
            product=Product.CNC,
            quantity=2,
            order_type=OrderType.LIMIT,
            price=Decimal("1452.0"),
        )
    )
    wire = _wire(pya3, "modify_order")
    _assert_same_request(modify, wire)
    assert modify.body == wire["body_json"]
    cancel = api.cancel_order("260727000000103")
    wire = _wire(pya3, "cancel_order")
    _assert_same_request(cancel, wire)
    assert cancel.body == wire["body_json"]
    assert interpret(cancel, _raw(wire)).broker_order_id == "260727000000103"


def test_ant_login_steps_match_pya3(pya3):
    creds = pya3["fake_credentials"]
    enc_call = protocol.ant_enc_key_call(ENDPOINTS, user_id=creds["user_id_passed"])
    wire = _wire(pya3, "session_login", 0)
    _assert_same_request(enc_call, wire)
    assert enc_call.body == wire["body_json"]
    enc_key = interpret(enc_call, _raw(wire))
    assert enc_key.reveal() == creds["encKey_served"]

    sid_call = protocol.ant_session_call(
        ENDPOINTS,
        user_id=creds["user_id_passed"],
        api_key=Secret(creds["api_key"]),
        enc_key=enc_key,
    )
    wire = _wire(pya3, "session_login", 1)
    _assert_same_request(sid_call, wire)
    assert sid_call.body == wire["body_json"]
    grant = interpret(sid_call, _raw(wire))
    assert grant.client_id == "AB1234"
    assert grant.token.reveal() == creds["sessionID_served"]


def test_ant_queries_match_pya3_and_parse(pya3):
    api = _ant(pya3)
    cases = [
        ("profile", api.profile()),
        ("funds_rms_limits", api.funds()),
        ("order_book", api.order_book()),
        ("trade_book", api.trade_book()),
        ("positions_net", api.positions()),
        ("holdings", api.holdings()),
        ("scrip_quote", api.quote("NSE", "1594")),
        ("order_history_raw_endpoint", api.order_history("260727000000103")),
    ]
    for label, call in cases:
        wire = _wire(pya3, label)
        _assert_same_request(call, wire)
        assert call.body == wire.get("body_json"), label
        assert interpret(call, _raw(wire)) is not None, label


def test_ant_answers_become_typed_values(pya3):
    api = _ant(pya3)
    book = interpret(api.order_book(), _raw(_wire(pya3, "order_book")))
    first = book[0]
    assert first.broker_order_id == "260727000000101"
    assert first.status is OrderStatus.COMPLETE and first.raw_status == "complete"
    assert first.side is Side.BUY and first.order_type is OrderType.MARKET
    assert first.average_price == Decimal("1500.00") and first.price is None
    assert first.tag == "sbx-mkt-1" and book[1].tag == ""
    assert first.rejection_reason == ""
    assert first.order_time is not None and first.order_time.utcoffset() is not None

    positions = interpret(api.positions(), _raw(_wire(pya3, "positions_net")))
    assert positions[0].net_quantity == 1
    assert positions[0].buy_average == Decimal("1500.00")  # "1,500.00"
    assert positions[0].unrealised_pnl == Decimal("1.00")

    funds = interpret(api.funds(), _raw(_wire(pya3, "funds_rms_limits")))
    assert funds.available_cash == Decimal("119428.29")
    profile = interpret(api.profile(), _raw(_wire(pya3, "profile")))
    assert profile.client_id == "AB1234"
    assert profile.exchanges == ("NSE", "BSE", "NFO", "MCX", "CDS")
    quote = interpret(api.quote("NSE", "1594"), _raw(_wire(pya3, "scrip_quote")))
    assert quote.ltp == Decimal("1511.65")
    holdings = interpret(api.holdings(), _raw(_wire(pya3, "holdings")))
    assert holdings[0].trading_symbol == "SBIN-EQ" and holdings[0].quantity == 10


def test_ant_ws_token_uses_pya3_header_form(pya3):
    wire = _wire(pya3, "ws_order_notify", 2)
    call = _ant(pya3).ws_token()
    assert call.method == "GET" and urlsplit(call.url).path == wire["path"]
    assert call.wire_headers()["Authorization"] == _headers(wire)["Authorization"]
    assert interpret(call, _raw(wire)).reveal() == "fakeordertoken0123456789abcdef"


# --- MCX quantities ----------------------------------------------------------------------------
def test_mcx_quantity_goes_out_in_lots_and_comes_back_in_units():
    lots = StaticLots({("MCX", "426467"): 30, ("MCX", "SILVER05DEC24"): 30})
    api = OpenApi(endpoints=ENDPOINTS, client_id="AB1", session=Secret("s" * 20), lots=lots)
    order = OrderRequest(
        exchange="MCX",
        token="426467",
        trading_symbol="SILVER05DEC24",
        side=Side.BUY,
        quantity=60,
        order_type=OrderType.MARKET,
        product=Product.NRML,
    )
    assert api.place_order(order).body[0]["quantity"] == 2
    assert api.place_order(order).body[0]["product"] == "NORMAL"
    units = OpenApi(
        endpoints=ENDPOINTS,
        client_id="AB1",
        session=Secret("s" * 20),
        lots=lots,
        dialect=Dialect(mcx_quantity="units", g3_carry_forward_product="NRML"),
    )
    assert units.place_order(order).body[0]["quantity"] == 60
    assert units.place_order(order).body[0]["product"] == "NRML"
