"""Pages for people, served by the sandbox on its own port: AliceBlue's vendor login page
(`/?appcode=…` → redirect with `authCode` and `userId`) and a small trading terminal
(`/terminal/`). Django templates rendered with `django.template.loader`; forms carry a
double-submit CSRF token; no inline script or style (CSP `default-src 'self'`).
Signing in on either page counts as the account's daily sign-in."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from aiohttp import web
from django.core import signing
from django.template.loader import render_to_string

from sandbox import engine as E
from sandbox import wire
from sandbox.server import CORE, SandboxCore
from sandbox.store import StoreError

CSRF_COOKIE = "sbx_csrf"
SESSION_COOKIE = "sbx_terminal"
SESSION_MAX_AGE = 12 * 3600
STATIC_DIR = Path(__file__).parent / "static" / "sandbox"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
)

MSG_BAD_LOGIN = "Client ID or password is wrong."
MSG_CSRF = "Your form expired. Please try again."
MSG_UNKNOWN_APP = "Unknown app code. Check the app code of your vendor app."
EXCHANGE_CHOICES = ("NSE", "BSE", "NFO", "MCX")
ORDER_TYPES = ("MARKET", "LIMIT", "SL", "SLM")
PRODUCTS = (("MIS", "INTRADAY"), ("CNC", "LONGTERM"), ("NRML", "NORMAL"))


def _render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    html = render_to_string(template, {**context, "csrf": token})
    response = web.Response(text=html, status=status, content_type="text/html")
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/")
    _secure_headers(response)
    return response


def _secure_headers(response: web.StreamResponse) -> None:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"


async def _form(request: web.Request) -> tuple[dict[str, str], bool]:
    data = await request.post()
    form = {k: str(v) for k, v in data.items()}
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = form.get("csrf", "")
    valid = bool(cookie) and hmac.compare_digest(cookie.encode(), sent.encode())
    return form, valid


def _redirect(location: str) -> web.Response:
    response = web.Response(status=303, headers={"Location": location})
    _secure_headers(response)
    return response


def _signed_in(core: SandboxCore, request: web.Request) -> str | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        data = signing.loads(
            raw, key=core.signing_key.decode(), salt="sandbox.terminal", max_age=SESSION_MAX_AGE
        )
    except signing.BadSignature:
        return None
    cid = data.get("cid") if isinstance(data, dict) else None
    return cid if isinstance(cid, str) and core.account(cid) else None


def _check_password(core: SandboxCore, client_id: str, password: str) -> str | None:
    account = core.account(client_id.strip())
    if account is None or not password:
        return None
    if not hmac.compare_digest(account.password.encode(), password.encode()):
        return None
    return account.client_id


# --- vendor login ---------------------------------------------------------------------------------
async def vendor_login(request: web.Request) -> web.Response:
    core = request.app[CORE]
    appcode = request.query.get("appcode", "")
    if not appcode:
        return _redirect("/terminal/")
    if appcode != core.app_code:
        return _render(request, "sandbox/vendor_login.html", {"fatal": MSG_UNKNOWN_APP}, 400)
    return _render(request, "sandbox/vendor_login.html", {"appcode": appcode})


async def vendor_login_post(request: web.Request) -> web.Response:
    core = request.app[CORE]
    form, valid = await _form(request)
    appcode = form.get("appcode", "")
    if appcode != core.app_code:
        return _render(request, "sandbox/vendor_login.html", {"fatal": MSG_UNKNOWN_APP}, 400)
    context: dict[str, Any] = {"appcode": appcode, "client_id": form.get("client_id", "")}
    if not valid:
        return _render(request, "sandbox/vendor_login.html", {**context, "error": MSG_CSRF}, 400)
    cid = _check_password(core, form.get("client_id", ""), form.get("password", ""))
    if cid is None:
        return _render(
            request, "sandbox/vendor_login.html", {**context, "error": MSG_BAD_LOGIN}, 400
        )
    core.record_daily_login(cid, "vendor-login")
    code = core.new_auth_code(cid)
    parts = urlsplit(core.redirect_url)
    query = (parts.query + "&" if parts.query else "") + urlencode(
        {"authCode": code, "userId": cid}
    )
    return _redirect(urlunsplit((parts.scheme, parts.netloc, parts.path, query, "")))


# --- terminal -------------------------------------------------------------------------------------
def _terminal_context(core: SandboxCore, cid: str) -> dict[str, Any]:
    eng = core.engine
    orders = []
    for order in reversed(eng.orders_by_client.get(cid, [])):
        f = order.unit_factor
        orders.append(
            {
                "no": order.order_no,
                "time": order.placed_at.strftime("%H:%M:%S"),
                "symbol": f"{order.exchange}:{order.trading_symbol}",
                "side": order.side,
                "qty": order.units // f,
                "filled": order.filled_units // f,
                "type": order.order_type,
                "product": order.product,
                "price": order.price,
                "trigger": order.trigger,
                "avg": order.avg_price,
                "status": order.status.replace("_", " "),
                "reason": order.reason,
                "tag": order.tag,
                "live": order.is_live,
            }
        )
    trades = [
        {
            "time": t.at.strftime("%H:%M:%S"),
            "order": t.order_no,
            "symbol": f"{t.exchange}:{t.trading_symbol}",
            "side": t.side,
            "qty": t.units // t.unit_factor,
            "price": t.price,
        }
        for t in reversed(eng.trades_by_client.get(cid, []))
    ]
    positions = []
    for pos in eng.positions(cid):
        factor = wire.position_factor(pos, core.dialect)
        positions.append(
            {
                "symbol": f"{pos.exchange}:{pos.trading_symbol}",
                "product": pos.product,
                "net": pos.net_units // factor,
                "avg": pos.net_avg,
                "ltp": pos.ltp,
                "realised": pos.realised,
                "unrealised": pos.unrealised,
            }
        )
    funds = eng.funds(cid)
    account = core.account(cid)
    return {
        "client_id": cid,
        "name": account.name if account else cid,
        "orders": orders,
        "trades": trades,
        "positions": positions,
        "funds": funds,
        "exchanges": EXCHANGE_CHOICES,
        "order_types": ORDER_TYPES,
        "products": PRODUCTS,
        "now": core.clock.now(),
        "round_the_clock": core.calendar.round_the_clock,
    }


async def terminal(request: web.Request) -> web.Response:
    core = request.app[CORE]
    cid = _signed_in(core, request)
    if cid is None:
        return _render(request, "sandbox/terminal_login.html", {})
    context = _terminal_context(core, cid)
    context["notice"] = request.query.get("notice", "")
    return _render(request, "sandbox/terminal.html", context)


async def terminal_login(request: web.Request) -> web.Response:
    core = request.app[CORE]
    form, valid = await _form(request)
    context = {"client_id": form.get("client_id", "")}
    if not valid:
        return _render(request, "sandbox/terminal_login.html", {**context, "error": MSG_CSRF}, 400)
    cid = _check_password(core, form.get("client_id", ""), form.get("password", ""))
    if cid is None:
        return _render(
            request, "sandbox/terminal_login.html", {**context, "error": MSG_BAD_LOGIN}, 400
        )
    core.record_daily_login(cid, "terminal")
    response = _redirect("/terminal/")
    value = signing.dumps({"cid": cid}, key=core.signing_key.decode(), salt="sandbox.terminal")
    response.set_cookie(SESSION_COOKIE, value, httponly=True, samesite="Strict", path="/")
    return response


async def terminal_logout(request: web.Request) -> web.Response:
    _, valid = await _form(request)
    response = _redirect("/terminal/")
    if valid:
        response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def terminal_signup(request: web.Request) -> web.Response:
    core = request.app[CORE]
    form, valid = await _form(request)
    signup = {"new_client_id": form.get("new_client_id", ""), "funds": form.get("funds", "")}
    if not valid:
        return _render(
            request, "sandbox/terminal_login.html", {**signup, "signup_error": MSG_CSRF}, 400
        )
    try:
        account = core.store.create_account(
            form.get("new_client_id", "").strip() or None,
            funds=form.get("funds", "").strip() or "1000000",
        )
    except StoreError as exc:
        return _render(
            request, "sandbox/terminal_login.html", {**signup, "signup_error": str(exc)}, 400
        )
    core.reload()
    return _render(
        request,
        "sandbox/credentials.html",
        {"account": account, "app_code": core.app_code, "api_secret": core.api_secret},
    )


async def terminal_order(request: web.Request) -> web.Response:
    core = request.app[CORE]
    cid = _signed_in(core, request)
    form, valid = await _form(request)
    if cid is None:
        return _redirect("/terminal/")
    errors: dict[str, str] = {}
    if not valid:
        errors["form"] = MSG_CSRF
    inst = core.engine.lookup(form.get("exchange", "").upper(), form.get("symbol", "").strip())
    if inst is None or inst.is_index:
        errors["symbol"] = "No such tradable instrument on this exchange (use the trading symbol)."
    if not errors and inst is not None:
        try:
            spec = wire.parse_g3_order(
                {
                    "exchange": inst.exchange,
                    "instrumentId": inst.token,
                    "transactionType": form.get("side", ""),
                    "quantity": form.get("quantity", ""),
                    "orderComplexity": "AMO" if form.get("amo") else "REGULAR",
                    "product": form.get("product", ""),
                    "orderType": form.get("order_type", ""),
                    "price": form.get("price", ""),
                    "slTriggerPrice": form.get("trigger", ""),
                    "validity": form.get("validity", "DAY"),
                    "orderTag": form.get("tag", ""),
                },
                core.engine,
                core.dialect,
            )
        except wire.WireError as exc:
            errors["form"] = f"{exc.text} ({exc.code})"
        else:
            spec.source, spec.generation = "WEB", "web"
            order = core.engine.place(cid, spec)
            core.flush()
            notice = f"Order {order.order_no}: {order.status.replace('_', ' ')}"
            if order.reason:
                notice += f" — {order.reason}"
            return _redirect("/terminal/?" + urlencode({"notice": notice}))
    context = _terminal_context(core, cid)
    context.update({"errors": errors, "form": form})
    return _render(request, "sandbox/terminal.html", context, 400)


async def terminal_cancel(request: web.Request) -> web.Response:
    return await _order_action(request, "cancel")


async def terminal_modify(request: web.Request) -> web.Response:
    return await _order_action(request, "modify")


async def _order_action(request: web.Request, action: str) -> web.Response:
    core = request.app[CORE]
    cid = _signed_in(core, request)
    form, valid = await _form(request)
    if cid is None:
        return _redirect("/terminal/")
    order = core.engine.orders.get(form.get("order_no", ""))
    if not valid or order is None or order.client_id != cid:
        notice = MSG_CSRF if not valid else "No such order."
        return _redirect("/terminal/?" + urlencode({"notice": notice}))
    if action == "cancel":
        done = core.engine.cancel(order)
        notice = f"Order {order.order_no} cancelled." if done else "The order is no longer open."
    else:
        try:
            qty = int(form["quantity"]) if form.get("quantity") else None
            price = E.Decimal(form["price"]) if form.get("price") else None
            trigger = E.Decimal(form["trigger"]) if form.get("trigger") else None
        except (ValueError, ArithmeticError):
            return _redirect(
                "/terminal/?" + urlencode({"notice": "Quantity and prices must be numbers."})
            )
        error = core.engine.modify(
            order,
            units=qty * order.unit_factor if qty else None,
            price=price,
            trigger=trigger,
        )
        notice = error or f"Order {order.order_no} modified."
    core.flush()
    return _redirect("/terminal/?" + urlencode({"notice": notice}))


async def static_css(request: web.Request) -> web.Response:
    path = STATIC_DIR / "terminal.css"
    response = web.Response(text=path.read_text(), content_type="text/css")
    response.headers["Cache-Control"] = "max-age=300"
    return response


def register(app: web.Application) -> None:
    r = app.router
    r.add_get("/", vendor_login)
    r.add_post("/", vendor_login_post)
    r.add_get("/terminal/", terminal)
    r.add_post("/terminal/login", terminal_login)
    r.add_post("/terminal/logout", terminal_logout)
    r.add_post("/terminal/signup", terminal_signup)
    r.add_post("/terminal/order", terminal_order)
    r.add_post("/terminal/cancel", terminal_cancel)
    r.add_post("/terminal/modify", terminal_modify)
    r.add_get("/terminal/static/terminal.css", static_css)
