"""The client against the running sandbox broker over real sockets: every operation, both API
generations, the synchronous and the asynchronous client (identical typed results), every
injected fault and every dialect switch."""

from __future__ import annotations

import time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tests.brokers.conftest import Broker, login
from trading.brokers.aliceblue.errors import (
    AmbiguousOrder,
    BrokerUnavailable,
    NeedsDailyLogin,
    PushNotEnabled,
    RateLimited,
    Rejected,
    SessionExpired,
)
from trading.brokers.aliceblue.types import (
    Complexity,
    Generation,
    ModifyRequest,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
)

IST = ZoneInfo("Asia/Kolkata")
GENERATIONS = pytest.mark.parametrize(
    "generation", [Generation.OPEN_API, Generation.ANT], ids=["open", "ant"]
)
MODES = pytest.mark.parametrize("mode", ["sync", "async"])


def infy(sbx, **kw) -> OrderRequest:
    inst = sbx.instrument("NSE", "INFY-EQ")
    fields = {
        "exchange": "NSE",
        "token": str(inst["token"]),
        "trading_symbol": inst["trading_symbol"],
        "side": Side.BUY,
        "quantity": 2,
        "order_type": OrderType.MARKET,
        "product": Product.MIS,
    }
    fields.update(kw)
    return OrderRequest(**fields)


@pytest.fixture
def account(sbx):
    return sbx.create_account(funds="1000000", daily_login=True)


def broker(sbx, account, generation, mode, **kw) -> Broker:
    return Broker(sbx, login(sbx, generation, account.client_id), mode, **kw)


def find(rows, broker_order_id):
    matches = [r for r in rows if r.broker_order_id == broker_order_id]
    assert matches, f"{broker_order_id} not in {[r.broker_order_id for r in rows]}"
    return matches[0]


@GENERATIONS
@MODES
def test_every_operation(sbx, account, generation, mode):
    sbx.set_price("NSE", "INFY-EQ", "1500")
    b = broker(sbx, account, generation, mode)

    ack = b.place_order(infy(sbx, tag="ct-mkt-1"))
    assert ack.broker_order_id
    row = b.find_order_by_tag("ct-mkt-1")
    assert row is not None and row.broker_order_id == ack.broker_order_id
    assert row.status is OrderStatus.COMPLETE
    assert (row.filled_quantity, row.pending_quantity) == (2, 0)
    assert row.average_price == Decimal("1500") and row.side is Side.BUY
    assert row.product is Product.MIS and row.order_type is OrderType.MARKET

    limit = b.place_order(
        infy(sbx, order_type=OrderType.LIMIT, price=Decimal("1400"), tag="ct-lmt-1")
    )
    row = find(b.order_book(), limit.broker_order_id)
    assert row.status is OrderStatus.OPEN and row.price == Decimal("1400")
    assert row.tag == "ct-lmt-1"

    b.modify_order(
        ModifyRequest(
            broker_order_id=limit.broker_order_id,
            exchange="NSE",
            token=row.token or str(sbx.instrument("NSE", "INFY-EQ")["token"]),
            trading_symbol="INFY-EQ",
            side=Side.BUY,
            product=Product.MIS,
            quantity=3,
            order_type=OrderType.LIMIT,
            price=Decimal("1410"),
        )
    )
    row = find(b.order_book(), limit.broker_order_id)
    assert (row.quantity, row.price, row.status) == (3, Decimal("1410"), OrderStatus.OPEN)
    history = b.order_history(limit.broker_order_id)
    assert history and {h.broker_order_id for h in history} == {limit.broker_order_id}

    b.cancel_order(limit.broker_order_id)
    row = find(b.order_book(), limit.broker_order_id)
    assert row.status is OrderStatus.CANCELLED

    stop = b.place_order(
        infy(
            sbx,
            side=Side.SELL,
            order_type=OrderType.SLM,
            trigger_price=Decimal("1300"),
            quantity=1,
        )
    )
    assert find(b.order_book(), stop.broker_order_id).status is OrderStatus.TRIGGER_PENDING

    trades = b.trade_book()
    fill = [t for t in trades if t.broker_order_id == ack.broker_order_id]
    assert fill and sum(t.quantity for t in fill) == 2 and fill[0].price == Decimal("1500")
    assert fill[0].tag == "ct-mkt-1"

    positions = [p for p in b.positions() if p.trading_symbol == "INFY-EQ"]
    assert positions and positions[0].net_quantity == 2
    assert positions[0].product is Product.MIS
    assert isinstance(b.holdings(), list)
    funds = b.funds()
    assert funds.available_cash is not None and funds.available_cash > 0
    assert b.profile().client_id == account.client_id
    quote = b.quote("NSE", str(sbx.instrument("NSE", "INFY-EQ")["token"]))
    assert quote.ltp == sbx.price("NSE", "INFY-EQ")
    assert b.create_ws_token().reveal()


@GENERATIONS
def test_sync_and_async_clients_read_identical_typed_results(sbx, account, generation):
    sync = broker(sbx, account, generation, "sync")
    sync.place_order(infy(sbx, tag="same-1"))
    sync.place_order(infy(sbx, order_type=OrderType.LIMIT, price=Decimal("1000"), tag="same-2"))
    asyn = Broker(sbx, sync.session, "async")
    for name in ("order_book", "trade_book", "positions", "holdings", "funds", "profile"):
        assert getattr(sync, name)() == getattr(asyn, name)(), name


@GENERATIONS
@MODES
def test_amo_outside_market_hours(sbx, account, generation, mode):
    sbx.set_round_the_clock(False)
    sbx.set_clock(sbx.now().astimezone(IST).replace(hour=18, minute=30))  # after the close
    sbx.daily_login(account.client_id)
    b = broker(sbx, account, generation, mode)
    amo = b.place_order(
        infy(
            sbx,
            order_type=OrderType.LIMIT,
            price=Decimal("1450"),
            product=Product.CNC,
            complexity=Complexity.AMO,
            tag="ct-amo",
        )
    )
    row = find(b.order_book(), amo.broker_order_id)
    assert row.status is OrderStatus.AMO_RECEIVED, row.raw_status
    assert row.tag == "ct-amo"


@GENERATIONS
@MODES
def test_short_funds_is_a_rejected_order_with_the_brokers_reason(sbx, account, generation, mode):
    b = broker(sbx, account, generation, mode)
    sbx.update_account(account.client_id, funds="10")
    poor = b.place_order(infy(sbx, quantity=50, tag="ct-poor"))
    row = find(b.order_book(), poor.broker_order_id)
    assert row.status is OrderStatus.REJECTED and row.rejection_reason


@GENERATIONS
def test_daily_login_rule(sbx, generation):
    fresh = sbx.create_account(daily_login=False)
    if generation is Generation.ANT:
        with pytest.raises(NeedsDailyLogin) as caught:
            login(sbx, generation, fresh.client_id)
        assert caught.value.message  # AliceBlue's own text
    sbx.daily_login(fresh.client_id)
    assert login(sbx, generation, fresh.client_id).token.reveal()


# --- faults ---------------------------------------------------------------------------------------
@GENERATIONS
@MODES
def test_latency_within_the_timeout_is_just_slow(sbx, account, generation, mode):
    b = broker(sbx, account, generation, mode)
    sbx.set_faults(account.client_id, latency_ms=300, jitter_ms=100)
    started = time.monotonic()
    assert b.order_book() == []
    assert time.monotonic() - started >= 0.3


@GENERATIONS
@MODES
def test_5xx_is_unavailable_for_queries_and_ambiguous_for_orders(sbx, account, generation, mode):
    b = broker(sbx, account, generation, mode)
    sbx.set_faults(account.client_id, error_rate=1.0, error_status=503)
    with pytest.raises(BrokerUnavailable) as caught:
        b.order_book()
    assert caught.value.status_code == 503
    with pytest.raises(AmbiguousOrder) as ambiguous:
        b.place_order(infy(sbx, tag="ct-5xx"))
    assert ambiguous.value.tag == "ct-5xx"


@GENERATIONS
@MODES
def test_timeout_after_accept_is_ambiguous_and_the_tag_finds_the_order(
    sbx, account, generation, mode
):
    b = broker(sbx, account, generation, mode)
    sbx.set_faults(account.client_id, order_timeout_rate=1.0, timeout_hold_ms=6000)
    with pytest.raises(AmbiguousOrder) as caught:
        b.place_order(infy(sbx, tag="ct-lost-1"))
    assert caught.value.tag == "ct-lost-1"
    sbx.clear_faults(account.client_id)
    row = b.find_order_by_tag("ct-lost-1")
    assert row is not None and row.status.is_accepted


@GENERATIONS
def test_late_appearing_order_is_found_on_a_later_look(sbx, account, generation):
    b = broker(sbx, account, generation, "sync")
    sbx.set_faults(account.client_id, book_delay_ms=1500)
    b.place_order(infy(sbx, tag="ct-late"))
    assert b.find_order_by_tag("ct-late") is None
    deadline = time.monotonic() + 10
    found = None
    while found is None and time.monotonic() < deadline:
        time.sleep(0.3)
        found = b.find_order_by_tag("ct-late")
    assert found is not None


@GENERATIONS
@MODES
def test_429_is_rate_limited(sbx, account, generation, mode):
    b = broker(sbx, account, generation, mode)
    sbx.set_faults(account.client_id, rate_limit_rate=1.0)
    with pytest.raises(RateLimited):
        b.positions()


@GENERATIONS
@MODES
@pytest.mark.parametrize("expired_http", ["200", "401"])
def test_forced_expiry_is_session_expired(sbx, account, generation, mode, expired_http):
    sbx.set_dialect(g3_expired_http=expired_http)
    b = broker(sbx, account, generation, mode)
    sbx.expire_sessions(account.client_id)
    with pytest.raises(SessionExpired):
        b.order_book()
    with pytest.raises(SessionExpired):
        b.place_order(infy(sbx))


@GENERATIONS
@MODES
def test_push_disabled_is_push_not_enabled(sbx, account, generation, mode):
    b = broker(sbx, account, generation, mode)
    sbx.set_faults(account.client_id, push_disabled=True)
    with pytest.raises(PushNotEnabled):
        b.create_ws_token()


# --- dialects -------------------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["TRIGGER PENDING", "TRIGGER_PENDING"])
def test_open_api_trigger_pending_spellings(sbx, account, spelling):
    sbx.set_dialect(g3_trigger_pending=spelling)
    b = broker(sbx, account, Generation.OPEN_API, "sync")
    ack = b.place_order(
        infy(sbx, side=Side.SELL, order_type=OrderType.SLM, trigger_price=Decimal("1000"))
    )
    row = find(b.order_book(), ack.broker_order_id)
    assert row.raw_status == spelling and row.status is OrderStatus.TRIGGER_PENDING


@pytest.mark.parametrize("envelope", ["not_ok", "status_code"])
def test_open_api_error_envelopes(sbx, account, envelope):
    sbx.set_dialect(g3_error_envelope=envelope)
    b = broker(sbx, account, Generation.OPEN_API, "sync")
    assert b.positions() == []  # EC920 "no positions" in either envelope
    with pytest.raises(Rejected) as caught:
        b.cancel_order("999999999999")
    assert caught.value.code.startswith("EC")


@pytest.mark.parametrize(("not_ok", "key"), [("Not_Ok", "emsg"), ("Not_ok", "Emsg")])
def test_ant_error_envelopes(sbx, account, not_ok, key):
    sbx.set_dialect(g2_not_ok=not_ok, g2_emsg_key=key)
    b = broker(sbx, account, Generation.ANT, "sync")
    assert b.order_book() == []
    with pytest.raises(Rejected) as caught:
        b.cancel_order("999999999999")
    assert caught.value.message


def test_ant_amo_ack_suffix(sbx, account):
    sbx.set_dialect(g2_amo_ack_suffix="on")
    b = broker(sbx, account, Generation.ANT, "sync")
    ack = b.place_order(
        infy(
            sbx,
            order_type=OrderType.LIMIT,
            price=Decimal("1450"),
            complexity=Complexity.AMO,
            product=Product.CNC,
        )
    )
    assert ack.broker_order_id.isdigit()
    assert find(b.order_book(), ack.broker_order_id)


@pytest.mark.parametrize("product_spelling", ["NORMAL", "NRML"])
def test_open_api_carry_forward_spelling(sbx, account, product_spelling):
    from trading.brokers.aliceblue.mapping import Dialect

    sbx.set_dialect(normal_product=product_spelling)
    fut = next(
        i
        for i in sbx.instruments("NFO")
        if i["symbol"] == "NIFTY" and i["instrument_type"] == "FUTIDX"
    )
    b = broker(
        sbx,
        account,
        Generation.OPEN_API,
        "sync",
        dialect=Dialect(g3_carry_forward_product=product_spelling),
    )
    ack = b.place_order(
        OrderRequest(
            exchange="NFO",
            token=str(fut["token"]),
            trading_symbol=fut["trading_symbol"],
            side=Side.BUY,
            quantity=int(fut["lot_size"]),
            order_type=OrderType.MARKET,
            product=Product.NRML,
        )
    )
    assert find(b.order_book(), ack.broker_order_id).product is Product.NRML


@GENERATIONS
@pytest.mark.parametrize("unit", ["lots", "units"])
def test_mcx_quantity_in_lots_or_units(sbx, account, generation, unit):
    from trading.brokers.aliceblue.mapping import Dialect, McxQuantity

    sbx.set_dialect(mcx_quantity=unit)
    inst = next(
        i
        for i in sbx.instruments("MCX")
        if not i["option_type"] and int(i.get("board_lot") or 1) > 1
    )
    board = int(inst["board_lot"])
    b = broker(sbx, account, generation, "sync", dialect=Dialect(mcx_quantity=McxQuantity(unit)))
    ack = b.place_order(
        OrderRequest(
            exchange="MCX",
            token=str(inst["token"]),
            trading_symbol=inst["trading_symbol"],
            side=Side.BUY,
            quantity=2 * board,  # our unit: contract units
            order_type=OrderType.MARKET,
            product=Product.NRML,
        )
    )
    row = find(b.order_book(), ack.broker_order_id)
    assert row.status is OrderStatus.COMPLETE, row.rejection_reason
    assert row.quantity == 2 * board and row.filled_quantity == 2 * board
    (sbx_order,) = [
        o for o in sbx.orders(account.client_id) if o["order_no"] == ack.broker_order_id
    ]
    assert sbx_order  # the sandbox saw the order
