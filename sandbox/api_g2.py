"""ANT REST (G2) endpoints: `/rest/AliceBlueAPIService/api/...` with the API-key login and
`Authorization: Bearer <USERID> <sessionID>`; bare lists, `stat` keys, numbers as strings
(PROTOCOL.md §2.1, §3.1, §4). An invalid or expired session gets HTTP 401."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from sandbox import api_g3, wire
from sandbox import engine as E
from sandbox.server import (
    CORE,
    G2,
    MSG_API_KEY,
    MSG_INVALID_INPUT,
    MSG_NO_DATA,
    MSG_NOT_LOGGED_IN,
    MSG_SESSION_EXPIRED,
    SandboxCore,
    Session,
    _bearer,
    _body,
    _json,
    maybe_hang,
)

Authed = Callable[[web.Request, SandboxCore, Session], Awaitable[web.StreamResponse]]


def err(core: SandboxCore, text: str, **extra: Any) -> web.Response:
    return _json(wire.g2_error(text, core.dialect, **extra))


def session_for(core: SandboxCore, request: web.Request) -> Session | None:
    parts = _bearer(request)
    if not parts:
        return None
    if len(parts) >= 2:
        return core.session(parts[-1], parts[0])
    return core.session(parts[0])


def authed(view: Authed) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        core = request.app[CORE]
        session = session_for(core, request)
        if session is None:
            body = wire.g2_error(MSG_SESSION_EXPIRED, core.dialect)
            return _json(body, status=401)
        return await view(request, core, session)

    return wrapper


async def get_enc_key(request: web.Request) -> web.Response:
    core = request.app[CORE]
    body = await _body(request)
    user_id = str((body or {}).get("userId") or "") if isinstance(body, dict) else ""
    account = core.account(user_id)
    if account is None:
        return err(core, MSG_INVALID_INPUT, encKey=None)
    if not core.signed_in_today(account.client_id):
        return err(core, MSG_NOT_LOGGED_IN, encKey=None)
    key = secrets.token_hex(16).upper()
    core.enc_keys[account.client_id] = key
    return _json({"stat": "Ok", "encKey": key, "emsg": None})


async def get_user_sid(request: web.Request) -> web.Response:
    core = request.app[CORE]
    body = await _body(request)
    if not isinstance(body, dict):
        return err(core, MSG_INVALID_INPUT)
    account = core.account(str(body.get("userId") or ""))
    user_data = str(body.get("userData") or "").strip().lower()
    if account is None or not user_data:
        return err(core, MSG_INVALID_INPUT)
    enc_key = core.enc_keys.get(account.client_id)
    if enc_key is None:
        return err(core, MSG_INVALID_INPUT)
    expected = hashlib.sha256(f"{account.client_id}{account.api_key}{enc_key}".encode())
    if expected.hexdigest() != user_data:
        return err(core, MSG_API_KEY)
    if not core.signed_in_today(account.client_id):
        return err(core, MSG_NOT_LOGGED_IN)
    token = core.issue_session(account, "g2")
    return _json({"stat": "Ok", "sessionID": token, "emsg": None})


@authed
async def account_details(request: web.Request, core: SandboxCore, session: Session):
    account = core.account(session.client_id)
    assert account is not None
    return _json(
        {
            "accountStatus": "Activated",
            "dpType": "CDSL",
            "accountId": account.client_id,
            "sBrokerName": "ALICEBLUE",
            "product": ["NRML", "MIS", "CNC"],
            "accountName": account.name,
            "cellAddr": "--",
            "emailAddr": "--",
            "exchEnabled": "nse_cm|bse_cm|nse_fo|mcx_fo",
            "stat": "Ok",
        }
    )


@authed
async def rms_limits(request: web.Request, core: SandboxCore, session: Session):
    funds = core.engine.funds(session.client_id)
    return _json(
        [
            {
                "symbol": "ALL",
                "segment": "ALL",
                "product": "ALL",
                "exchange": "ALL",
                "net": wire.p2(funds.available),
                "cashmarginavailable": wire.p2(funds.opening),
                "credits": wire.p2(funds.opening),
                "debits": wire.p2(funds.used_margin),
                "spanmargin": "0.00",
                "exposuremargin": "0.00",
                "varmargin": wire.p2(funds.used_margin),
                "realizedMtomPrsnt": wire.p2(funds.realised),
                "unrealizedMtomPrsnt": wire.p2(funds.unrealised),
                "premiumPrsnt": "0",
                "payoutamount": "0.00",
                "multiplier": "1.00",
                "elm": "0.00",
                "rmsPayInAmnt": "0",
                "notionalCash": "0.000000",
                "directcollateralvalue": "0.00",
                "collateralvalue": "0.00",
                "adhocMargin": "0.000000",
                "branchAdhoc": "0.000000",
                "category": "ABFS-COMMON",
                "stat": "Ok",
            }
        ]
    )


def _ack(core: SandboxCore, order: E.Order) -> dict[str, Any]:
    number = order.order_no
    if order.status == E.AMO and core.dialect["g2_amo_ack_suffix"] == "on":
        number += "-after market order req received"
    return {"stat": "Ok", "NOrdNo": number}


@authed
async def place(request: web.Request, core: SandboxCore, session: Session):
    body = await _body(request)
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list) or not body:
        return err(core, MSG_INVALID_INPUT)
    delay = int(core.fault(session.client_id, "book_delay_ms")) / 1000
    result = []
    for item in body:
        try:
            spec = wire.parse_g2_order(item, core.engine, core.dialect)
        except wire.WireError as exc:
            result.append(wire.g2_error(exc.text, core.dialect))
            continue
        order = core.engine.place(session.client_id, spec, visible_delay=delay)
        result.append(_ack(core, order))
    core.flush()
    if await maybe_hang(core, request, session.client_id):
        return web.Response(status=504)
    return _json(result)


def _result(order_no: str) -> dict[str, Any]:
    return {"stat": "Ok", "Result": f" NEST Order Number :{order_no}", "nestOrderNumber": order_no}


@authed
async def modify(request: web.Request, core: SandboxCore, session: Session):
    body = await _body(request)
    try:
        order_no, change = wire.parse_g2_modify(body)
    except wire.WireError as exc:
        return err(core, exc.text)
    order = core.engine.orders.get(order_no)
    if order is None or order.client_id != session.client_id:
        return err(core, "Order not found")
    inst = core.engine.instruments[(order.exchange, order.token)]
    units = None
    if change.quantity is not None:
        try:
            units, _ = wire.units_for(inst, change.quantity, core.dialect)
        except wire.WireError as exc:
            return err(core, exc.text)
        units = change.quantity * order.unit_factor
    new_type = change.order_type or order.order_type
    price = change.price
    if new_type in ("MARKET", "SLM"):
        price = None
    elif price is not None and price <= 0:
        return err(core, "Invalid Price")
    error = core.engine.modify(
        order, units=units, order_type=change.order_type, price=price, trigger=change.trigger
    )
    if error:
        return err(core, error)
    core.flush()
    if await maybe_hang(core, request, session.client_id):
        return web.Response(status=504)
    return _json(_result(order.order_no))


@authed
async def cancel(request: web.Request, core: SandboxCore, session: Session):
    body = await _body(request)
    order_no = (
        str((body or {}).get("nestOrderNumber") or "").strip() if isinstance(body, dict) else ""
    )
    if not order_no:
        return err(core, MSG_INVALID_INPUT)
    order = core.engine.orders.get(order_no)
    if order is None or order.client_id != session.client_id:
        return err(core, "Order not found")
    if not core.engine.cancel(order):
        return err(core, "Order is not in open status")
    core.flush()
    if await maybe_hang(core, request, session.client_id):
        return web.Response(status=504)
    return _json(_result(order.order_no))


@authed
async def exit_bracket(request: web.Request, core: SandboxCore, session: Session):
    return err(core, "No bracket or cover order found")


@authed
async def order_book(request: web.Request, core: SandboxCore, session: Session):
    orders = api_g3._visible_orders(core, session.client_id)
    if not orders:
        return err(core, MSG_NO_DATA)
    rows = [wire.g2_order_row(o, core.engine.instruments[(o.exchange, o.token)]) for o in orders]
    return _json(list(reversed(rows)))


@authed
async def order_history(request: web.Request, core: SandboxCore, session: Session):
    body = await _body(request)
    order_no = (
        str((body or {}).get("nestOrderNumber") or "").strip() if isinstance(body, dict) else ""
    )
    order = core.engine.orders.get(order_no)
    if order is None or order.client_id != session.client_id or not order.visible():
        return err(core, MSG_NO_DATA)
    inst = core.engine.instruments[(order.exchange, order.token)]
    return _json(wire.g2_history_rows(order, inst))


@authed
async def trade_book(request: web.Request, core: SandboxCore, session: Session):
    visible = {o.order_no for o in api_g3._visible_orders(core, session.client_id)}
    rows = [
        wire.g2_trade_row(t)
        for t in core.engine.trades_by_client.get(session.client_id, [])
        if t.order_no in visible and t.trading_day == core.clock.today()
    ]
    if not rows:
        return err(core, MSG_NO_DATA)
    return _json(rows)


@authed
async def position_book(request: web.Request, core: SandboxCore, session: Session):
    body = await _body(request)
    kind = str((body or {}).get("ret") or "").upper() if isinstance(body, dict) else ""
    if kind not in ("DAY", "NET"):
        return err(core, MSG_INVALID_INPUT)
    rows = []
    for pos in api_g3._positions(core, session.client_id):
        if kind == "DAY" and not (pos.day_buy_units or pos.day_sell_units):
            continue
        row = wire.g2_position_row(pos, core.dialect, kind)
        row["actid"] = session.client_id
        rows.append(row)
    if not rows:
        return err(core, MSG_NO_DATA)
    return _json(rows)


@authed
async def holdings(request: web.Request, core: SandboxCore, session: Session):
    rows = []
    total = Decimal(0)
    for pos, held in api_g3.holdings_of(core, session.client_id):
        avg = (pos.cf_buy_value / pos.cf_buy_units).quantize(E.CENT) if pos.cf_buy_units else E.ZERO
        total += pos.ltp * pos.overnight_units
        nse = pos.exchange == "NSE"
        rows.append(
            {
                "Nsetsym": pos.trading_symbol if nse else "",
                "Bsetsym": pos.instrument.symbol,
                "ExchSeg1": "NSE" if nse else "BSE",
                "ExchSeg2": "BSE" if nse else "NSE",
                "Token1": pos.token,
                "Token2": "",
                "Holdqty": str(pos.overnight_units),
                "HUqty": "0",
                "SellableQty": str(held),
                "Price": wire.p2(avg),
                "Ltp": wire.p2(pos.ltp),
                "LTnse": wire.p2(pos.ltp) if nse else "0.00",
                "LTbse": "0.00" if nse else wire.p2(pos.ltp),
                "pdc": wire.p2(core.engine.close[(pos.exchange, pos.token)]),
                "Pcode": "CNC",
                "isin": "",
                "WHqty": "0",
                "Usedqty": str(pos.overnight_units - held),
                "CUqty": "0",
                "Colqty": "0",
                "Coltype": "--",
                "Haircut": "0.00",
                "LTcse": "0.00",
                "Tprod": "NA",
            }
        )
    if not rows:
        return err(core, MSG_NO_DATA)
    return _json(
        {
            "stat": "Ok",
            "clientid": session.client_id,
            "HoldingVal": rows,
            "Totalval": {"TotalNSEHoldingValue": wire.p2(total)},
        }
    )


@authed
async def square_off(request: web.Request, core: SandboxCore, session: Session):
    body = await _body(request)
    if not isinstance(body, dict):
        return err(core, MSG_INVALID_INPUT)
    try:
        net = int(str(body.get("netQty")))
    except ValueError:
        return err(core, MSG_INVALID_INPUT)
    if net == 0:
        return err(core, MSG_INVALID_INPUT)
    item = {
        "complexty": "regular",
        "exch": body.get("exchSeg"),
        "pCode": body.get("pCode"),
        "prctyp": "MKT",
        "price": 0,
        "qty": abs(net),
        "ret": "DAY",
        "symbol_id": str(body.get("tockenNo") or ""),
        "trading_symbol": body.get("symbol"),
        "transtype": "SELL" if net > 0 else "BUY",
    }
    try:
        spec = wire.parse_g2_order(item, core.engine, core.dialect)
    except wire.WireError as exc:
        return _json([wire.g2_error(exc.text, core.dialect)])
    order = core.engine.place(session.client_id, spec)
    core.flush()
    return _json([_ack(core, order)])


async def scrip_quote(request: web.Request) -> web.Response:
    """Accepts the G2 header and, as observed live, a G3 userSession in it (or alone)."""
    core = request.app[CORE]
    session = session_for(core, request)
    if session is None:
        return _json(wire.g2_error(MSG_SESSION_EXPIRED, core.dialect), status=401)
    body = await _body(request)
    if not isinstance(body, dict):
        return err(core, MSG_INVALID_INPUT)
    exchange = str(body.get("exch") or "").upper()
    inst = core.engine.lookup(exchange, str(body.get("symbol") or ""))
    if inst is None:
        return err(core, "Invalid Symbol")
    q = core.quote(inst)
    ltp = wire.p2(q["ltp"])
    tick_paise = str(int(inst.tick_size * 100))
    return _json(
        {
            "stat": "Ok",
            "LTP": ltp,
            "Ltp": ltp,
            "openPrice": wire.p2(q["close"]),
            "High": wire.p2(max(q["close"], q["ltp"])),
            "Low": wire.p2(min(q["close"], q["ltp"])),
            "PrvClose": wire.p2(q["close"]),
            "Change": wire.p2(q["change"]),
            "PerChange": wire.p2(q["pct"]),
            "TradeVolume": "0",
            "TSymbl": inst.trading_symbol,
            "symbolname": inst.symbol,
            "companyname": inst.name,
            "Exchange": inst.exchange,
            "token": inst.token,
            "BodLotQty": inst.lot_size,
            "LotSize": str(inst.lot_size),
            "TickSize": tick_paise,
            "DecimalPrecision": 2,
            "exchFeedTime": core.clock.now().strftime("%d-%b-%Y %H:%M:%S"),
            "BRate": ltp,
            "BQty": "0",
            "SRate": ltp,
            "SQty": "0",
            "yearlyHighPrice": wire.p2(q["close"] * Decimal("1.3")),
            "yearlyLowPrice": wire.p2(q["close"] * Decimal("0.7")),
        }
    )


@authed
async def socket_session(request: web.Request, core: SandboxCore, session: Session):
    return _json({"stat": "Ok", "result": {"wsSess": secrets.token_hex(8)}})


@authed
async def basket_margin(request: web.Request, core: SandboxCore, session: Session):
    body = await _body(request)
    if not isinstance(body, list) or not body:
        return err(core, MSG_INVALID_INPUT)
    total = Decimal(0)
    for leg in body:
        if not isinstance(leg, dict):
            return err(core, MSG_INVALID_INPUT)
        inst = core.engine.lookup(
            str(leg.get("exchange") or "").upper(), leg.get("tradingSymbol") or ""
        )
        if inst is None:
            return err(core, "Invalid Symbol")
        item = {
            "exch": inst.exchange,
            "symbol_id": inst.token,
            "transtype": leg.get("transType"),
            "qty": leg.get("qty"),
            "pCode": leg.get("product"),
            "prctyp": leg.get("priceType"),
            "price": leg.get("price"),
            "trigPrice": leg.get("triggerPrice"),
            "ret": "DAY",
        }
        try:
            spec = wire.parse_g2_order(item, core.engine, core.dialect)
        except wire.WireError as exc:
            return err(core, exc.text)
        total += core.engine.order_margin(session.client_id, spec)
    return _json({"stat": "Ok", "marginUsed": wire.p2(total)})


async def search(request: web.Request) -> web.Response:
    core = request.app[CORE]
    body = await _body(request)
    if not isinstance(body, dict):
        return err(core, MSG_INVALID_INPUT)
    text = str(body.get("symbol") or "").strip().upper()
    exchanges = body.get("exchange") or []
    if isinstance(exchanges, str):
        exchanges = [exchanges]
    out = []
    for inst in core.universe:
        if inst.is_index or (exchanges and inst.exchange not in exchanges):
            continue
        if text and (text in inst.symbol.upper() or text in inst.trading_symbol.upper()):
            out.append(
                {
                    "exch": inst.exchange,
                    "token": inst.token,
                    "formattedInsName": inst.formatted_name,
                    "symbol": inst.trading_symbol,
                    "expiry": inst.expiry.isoformat() if inst.expiry else "",
                    "lotSize": str(inst.lot_size),
                }
            )
        if len(out) >= 50:
            break
    return _json(out)


def register(app: web.Application) -> None:
    r = app.router
    r.add_post(G2 + "customer/getAPIEncpkey", get_enc_key)
    r.add_post(G2 + "customer/getUserSID", get_user_sid)
    r.add_get(G2 + "customer/accountDetails", account_details)
    r.add_get(G2 + "limits/getRmsLimits", rms_limits)
    r.add_post(G2 + "placeOrder/executePlaceOrder", place)
    r.add_post(G2 + "placeOrder/modifyOrder", modify)
    r.add_post(G2 + "placeOrder/cancelOrder", cancel)
    r.add_post(G2 + "placeOrder/exitBracketOrder", exit_bracket)
    r.add_get(G2 + "placeOrder/fetchOrderBook", order_book)
    r.add_post(G2 + "placeOrder/orderHistory", order_history)
    r.add_get(G2 + "placeOrder/fetchTradeBook", trade_book)
    r.add_post(G2 + "positionAndHoldings/positionBook", position_book)
    r.add_get(G2 + "positionAndHoldings/holdings", holdings)
    r.add_post(G2 + "positionAndHoldings/sqrOofPosition", square_off)
    r.add_post(G2 + "ScripDetails/getScripQuoteDetails", scrip_quote)
    r.add_post(G2 + "basket/getMargin", basket_margin)
    r.add_post(G2 + "ws/invalidateSocketSess", socket_session)
    r.add_post(G2 + "ws/createSocketSess", socket_session)
    r.add_post("/rest/DataApiService/v2/exchange/getScripForSearchAPI", search)
