"""Open API (G3) endpoints: `/open-api/od/v1/...` with `Authorization: Bearer <userSession>`
and the `{"status","message","infoMessage","result"}` envelope (PROTOCOL.md §3.2, §5)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from sandbox import engine as E
from sandbox import wire
from sandbox.contracts import Instrument
from sandbox.server import (
    CORE,
    G3,
    MSG_INVALID_AUTH_CODE,
    MSG_NOT_LOGGED_IN,
    SandboxCore,
    Session,
    _bearer,
    _body,
    _json,
    maybe_hang,
)

Authed = Callable[[web.Request, SandboxCore, Session], Awaitable[web.StreamResponse]]


def ok(data: Any) -> web.Response:
    return _json(wire.g3_ok(data))


def err(core: SandboxCore, code: str, text: str | None = None) -> web.Response:
    return _json(wire.g3_error(code, core.dialect, text))


def authed(view: Authed) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        core = request.app[CORE]
        parts = _bearer(request)
        session = core.session(parts[-1] if parts else None)
        if session is None:
            status = int(core.dialect["g3_expired_http"])
            return _json(wire.g3_error("EC087", core.dialect), status=status)
        return await view(request, core, session)

    return wrapper


async def get_user_details(request: web.Request) -> web.Response:
    """Vendor login step 5: checkSum = sha256(userId + authCode + apiSecret) → userSession."""
    core = request.app[CORE]
    body = await _body(request)
    checksum = (
        str((body or {}).get("checkSum") or "").strip().lower() if isinstance(body, dict) else ""
    )
    failure = {"stat": "Not_ok", "emsg": MSG_INVALID_AUTH_CODE}
    if not checksum:
        return _json(failure)
    now = time.monotonic()
    for code, (client_id, expires) in list(core.auth_codes.items()):
        if expires < now:
            core.auth_codes.pop(code, None)
            continue
        candidates = {client_id, client_id.upper(), client_id.lower()}
        for uid in candidates:
            digest = hashlib.sha256(f"{uid}{code}{core.api_secret}".encode()).hexdigest()
            if digest == checksum:
                core.auth_codes.pop(code, None)  # single use
                account = core.account(client_id)
                if account is None:
                    return _json(failure)
                if not core.signed_in_today(account.client_id):
                    return _json({"stat": "Not_ok", "emsg": MSG_NOT_LOGGED_IN})
                token = core.issue_session(account, "g3")
                return _json({"stat": "Ok", "clientId": account.client_id, "userSession": token})
    return _json(failure)


@authed
async def profile(request: web.Request, core: SandboxCore, session: Session) -> web.Response:
    account = core.account(session.client_id)
    assert account is not None
    return ok(
        [
            {
                "clientId": account.client_id,
                "clientName": account.name,
                "isTotpEnabled": "Y",
                "isPoaProvided": "N",
                "accountStatus": "Activated",
                "exchanges": ["NSE", "BSE", "NFO", "MCX"],
                "products": ["LONGTERM", "INTRADAY", core.dialect["normal_product"]],
                "orderComplexity": ["REGULAR", "AMO"],
            }
        ]
    )


@authed
async def limits(request: web.Request, core: SandboxCore, session: Session) -> web.Response:
    funds = core.engine.funds(session.client_id)
    return ok(
        [
            {
                "tradingLimit": float(funds.available),
                "openingCashLimit": float(funds.opening),
                "intradayPayin": 0,
                "collateralMargin": 0,
                "creditForSell": 0,
                "adhocMargin": 0,
                "utilizedMargin": float(funds.used_margin),
                "blockedForPayout": 0,
                "utilizedSpanMargin": 0,
                "utilizedExposureMargin": 0,
                "realizedPnl": float(funds.realised),
                "unrealizedPnl": float(funds.unrealised),
            }
        ]
    )


def _visible_orders(core: SandboxCore, client_id: str) -> list[E.Order]:
    return [o for o in core.engine.orders_by_client.get(client_id, ()) if o.visible()]


def _inst(core: SandboxCore, exchange: str, token: str) -> Instrument:
    return core.engine.instruments[(exchange, token)]


@authed
async def order_book(request: web.Request, core: SandboxCore, session: Session) -> web.Response:
    orders = _visible_orders(core, session.client_id)
    if not orders:
        return err(core, "EC916")
    rows = [wire.g3_order_row(o, _inst(core, o.exchange, o.token), core.dialect) for o in orders]
    return ok(list(reversed(rows)))


@authed
async def order_history(request: web.Request, core: SandboxCore, session: Session) -> web.Response:
    body = await _body(request)
    order_no = (
        str((body or {}).get("brokerOrderId") or "").strip() if isinstance(body, dict) else ""
    )
    if not order_no:
        return err(core, "EC945")
    order = core.engine.orders.get(order_no)
    if order is None or order.client_id != session.client_id or not order.visible():
        return err(core, "EC918")
    inst = _inst(core, order.exchange, order.token)
    return ok(wire.g3_history_rows(order, inst, core.dialect))


@authed
async def trade_book(request: web.Request, core: SandboxCore, session: Session) -> web.Response:
    trades = core.engine.trades_by_client.get(session.client_id, [])
    visible = {o.order_no for o in _visible_orders(core, session.client_id)}
    rows = [
        wire.g3_trade_row(t, _inst(core, t.exchange, t.token), core.dialect)
        for t in trades
        if t.order_no in visible and t.trading_day == core.clock.today()
    ]
    if not rows:
        return err(core, "EC926")
    return ok(rows)


def _positions(core: SandboxCore, client_id: str) -> list[E.Position]:
    today = core.clock.today()
    out = []
    for pos in core.engine.positions(client_id):
        if pos.product == "CNC" and not pos.day_buy_units and not pos.day_sell_units:
            continue  # delivered: shows under holdings
        if not pos.net_units and not (pos.day_buy_units or pos.day_sell_units):
            continue
        out.append(pos)
    del today
    return out


@authed
async def positions(request: web.Request, core: SandboxCore, session: Session) -> web.Response:
    rows = [
        wire.g3_position_row(p, core.dialect, core.engine.close[(p.exchange, p.token)])
        for p in _positions(core, session.client_id)
    ]
    if not rows:
        return err(core, "EC920")
    return ok(rows)


def holdings_of(core: SandboxCore, client_id: str) -> list[tuple[E.Position, int]]:
    out = []
    for pos in core.engine.positions(client_id):
        if pos.product != "CNC" or pos.exchange not in ("NSE", "BSE"):
            continue
        held = pos.overnight_units - pos.day_sell_units
        if pos.overnight_units > 0:
            out.append((pos, max(held, 0)))
    return out


@authed
async def holdings(request: web.Request, core: SandboxCore, session: Session) -> web.Response:
    if request.match_info.get("product", "CNC").upper() != "CNC":
        return err(core, "EC922")  # the sandbox has no MTF book
    rows = []
    for pos, held in holdings_of(core, session.client_id):
        avg = (pos.cf_buy_value / pos.cf_buy_units).quantize(E.CENT) if pos.cf_buy_units else E.ZERO
        nse = pos.exchange == "NSE"
        rows.append(
            {
                "isin": "",
                "nseInstrumentId": pos.token if nse else "",
                "bseInstrumentId": "" if nse else pos.token,
                "nseTradingSymbol": pos.trading_symbol if nse else "",
                "bseTradingSymbol": "" if nse else pos.trading_symbol,
                "previousDayClose": float(core.engine.close[(pos.exchange, pos.token)]),
                "product": "DELIVERY",
                "formattedInstrumentName": pos.instrument.symbol,
                "averageTradedPrice": float(avg),
                "collateralQuantity": 0,
                "authorizedQuantity": 0,
                "dpQuantity": pos.overnight_units,
                "totalQuantity": pos.overnight_units,
                "t1Quantity": 0,
                "ltp": float(pos.ltp),
                "sellableQty": held,
                "investedPrice": float((avg * pos.overnight_units).quantize(E.CENT)),
            }
        )
    if not rows:
        return err(core, "EC922")
    return ok(rows)


async def _place(request: web.Request, core: SandboxCore, session: Session) -> web.Response:
    body = await _body(request)
    if not isinstance(body, list) or not body:
        return err(core, "EC914")
    try:
        specs = [wire.parse_g3_order(item, core.engine, core.dialect) for item in body]
    except wire.WireError as exc:
        return err(core, exc.code, exc.text)
    delay = int(core.fault(session.client_id, "book_delay_ms")) / 1000
    result = []
    for spec in specs:
        order = core.engine.place(session.client_id, spec, visible_delay=delay)
        result.append({"requestTime": wire.t_g3(order.placed_at), "brokerOrderId": order.order_no})
    core.flush()
    if await maybe_hang(core, request, session.client_id):
        return web.Response(status=504)
    return ok(result)


place = authed(_place)


@authed
async def modify(request: web.Request, core: SandboxCore, session: Session) -> web.Response:
    body = await _body(request)
    try:
        order_no, change = wire.parse_g3_modify(body)
    except wire.WireError as exc:
        return err(core, exc.code, exc.text)
    order = core.engine.orders.get(order_no)
    if order is None or order.client_id != session.client_id:
        return err(core, "EC994")
    if not order.is_live:
        return err(core, "EC993")
    inst = _inst(core, order.exchange, order.token)
    units = None
    if change.quantity is not None:
        try:
            units, factor = wire.units_for(inst, change.quantity, core.dialect)
        except wire.WireError as exc:
            return err(core, exc.code, exc.text)
        if factor != order.unit_factor:
            units = change.quantity * order.unit_factor
    new_type = change.order_type or order.order_type
    if new_type == "SL":
        price = change.price if change.price is not None else order.price
        trigger = change.trigger if change.trigger is not None else order.trigger
        if order.side == "BUY" and trigger > price:
            return err(core, "EC973")
        if order.side == "SELL" and trigger < price:
            return err(core, "EC974")
    error = core.engine.modify(
        order,
        units=units,
        order_type=change.order_type,
        price=change.price if change.price else None,
        trigger=change.trigger if change.trigger else None,
        validity=change.validity,
    )
    if error:
        code = "EC950" if "tick" in error else "EC993"
        return err(core, code, error)
    core.flush()
    if await maybe_hang(core, request, session.client_id):
        return web.Response(status=504)
    return ok([{"brokerOrderId": order.order_no, "requestTime": wire.t_g3(core.clock.now())}])


@authed
async def cancel(request: web.Request, core: SandboxCore, session: Session) -> web.Response:
    body = await _body(request)
    order_no = (
        str((body or {}).get("brokerOrderId") or "").strip() if isinstance(body, dict) else ""
    )
    if not order_no:
        return err(core, "EC945")
    order = core.engine.orders.get(order_no)
    if order is None or order.client_id != session.client_id:
        return err(core, "EC997")
    if not core.engine.cancel(order):
        return err(core, "EC993")
    core.flush()
    if await maybe_hang(core, request, session.client_id):
        return web.Response(status=504)
    return ok([{"brokerOrderId": order.order_no, "requestTime": wire.t_g3(core.clock.now())}])


@authed
async def check_margin(request: web.Request, core: SandboxCore, session: Session) -> web.Response:
    body = await _body(request)
    item = dict(body) if isinstance(body, dict) else body
    if isinstance(item, dict):
        item.setdefault("validity", "DAY")
    try:
        spec = wire.parse_g3_order(item, core.engine, core.dialect)
    except wire.WireError as exc:
        return err(core, exc.code, exc.text)
    funds = core.engine.funds(session.client_id)
    required = core.engine.order_margin(session.client_id, spec)
    short = max(required - funds.available, Decimal(0))
    return ok(
        [
            {
                "status": "Ok",
                "message": "Success",
                "totalCashAvailable": wire.p2(funds.available),
                "preOrderMargin": wire.p2(funds.used_margin),
                "postOrderMargin": wire.p2(funds.used_margin + required),
                "currentOrderMargin": wire.p2(required),
                "rmsValidationCheck": "Margin Shortfall" if short else "",
                "fundShort": wire.p2(short) if short else "",
            }
        ]
    )


@authed
async def exit_sno(request: web.Request, core: SandboxCore, session: Session) -> web.Response:
    body = await _body(request)
    if not isinstance(body, list) or not body or not isinstance(body[0], dict):
        return err(core, "EC914")
    order_no = str(body[0].get("brokerOrderId") or body[0].get("orderNo") or "").strip()
    if not order_no:
        return err(core, "EC945")
    order = core.engine.orders.get(order_no)
    if order is None or order.client_id != session.client_id:
        return err(core, "EC998")
    return err(core, "EC091")  # only BO/CO legs can be exited; the sandbox refuses BO/CO


@authed
async def ws_session(request: web.Request, core: SandboxCore, session: Session) -> web.Response:
    return ok([{"Status": "OK"}])


async def notify_post(request: web.Request) -> web.Response:
    """TradeHub POSTs its login frame here after its socket closes (an SDK bug)."""
    return _json(wire.g3_error("EC914", request.app[CORE].dialect))


def register(app: web.Application) -> None:
    r = app.router
    r.add_post(G3 + "vendor/getUserDetails", get_user_details)
    r.add_post("/rest/AliceBlueAPIService/sso/getUserDetails", get_user_details)
    for path in ("profile/", "profile"):
        r.add_get(G3 + path, profile)
    for path in ("limits/", "limits"):
        r.add_get(G3 + path, limits)
    r.add_get(G3 + "positions", positions)
    r.add_get(G3 + "holdings", holdings)
    r.add_get(G3 + "holdings/{product}", holdings)
    r.add_post(G3 + "orders/placeorder", place)
    r.add_post(G3 + "orders/positions/sqroff", place)
    r.add_post(G3 + "orders/modify", modify)
    r.add_post(G3 + "orders/cancel", cancel)
    r.add_get(G3 + "orders/book", order_book)
    r.add_post(G3 + "orders/history", order_history)
    r.add_get(G3 + "orders/trades", trade_book)
    r.add_post(G3 + "orders/checkMargin", check_margin)
    r.add_post(G3 + "orders/exit/sno", exit_sno)
    r.add_post(G3 + "profile/invalidateWsSess", ws_session)
    r.add_post(G3 + "profile/createWsSess", ws_session)
    r.add_post("/open-api/order-notify/websocket", notify_post)
