"""The JSON API for scripts: the seed's paths, field names and envelope, now authenticated.

    POST  /api/followers/register-api-key   register a follower (master)
    GET   /api/followers/list               the master's followers
    GET   /api/followers/copy-trades        copy trades (follower: own; master: its followers')
    POST  /api/followers/copy-trades-log    a manual copy trade (master)
    PATCH /api/followers/copy-trades-log    cancel a PENDING copy trade
    GET   /api/openapi.json                 this API's OpenAPI document (generated)

Every answer, error or not, is `{"ok", "message", "data", "error"}`; bad input is a 400 with
messages per field, never HTML and never a 500. The endpoints call the same services as the
pages (accounts.services.register_follower, trading.services), never a second write path.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Query
from ninja.errors import AuthenticationError, HttpError, ValidationError
from pydantic import BaseModel, Field

from accounts.models import Follower, Master, User
from api.auth import MASTERS, MASTERS_ONLY, PEOPLE
from api.schemas import (
    CopyTradeOut,
    CopyTradeStatusIn,
    Envelope,
    ErrorEnvelope,
    FollowerOut,
    FollowerRegisterIn,
    ManualCopyIn,
    ManualCopyOut,
    RegisteredFollowerOut,
    Status,
)
from trading import selectors
from trading.models import CopyTrade

log = logging.getLogger(__name__)

# --- Messages -----------------------------------------------------------------------------------
UNAUTHENTICATED = (
    "Authentication required: log in (masters: with the second factor), or send "
    "'Authorization: Bearer <token>' (python manage.py api_token USERNAME)."
)
NOT_ALLOWED = "You may not do this."
FOLLOWER_NOT_FOUND = "No such follower among yours."
COPY_TRADE_NOT_FOUND = "No such copy trade among yours."
INVALID_INPUT = "Some values are not valid; see error.fields."
CSRF_FAILED = "CSRF check failed: send the X-CSRFToken header with the csrftoken cookie's value."
ONLY_CANCEL = (
    "Only cancelling is allowed here: send status CANCELLED for a PENDING copy trade. Other "
    "status changes are made by the copier from what the broker reports."
)
MANUAL_RECORDED = (
    "Manual copy trade recorded: the copier is deciding each follower's copy (see copy-trades)."
)
INTERNAL_ERROR = "Something went wrong on our side; nothing was changed. It has been logged."
METHOD_NOT_ALLOWED = "This method is not allowed here."
NOT_FOUND = "No such API endpoint."

# camelCase API names of the services' field names (their ValidationError keys).
API_FIELD_NAMES = {
    "display_name": "displayName",
    "client_id": "clientId",
    "login_method": "loginMethod",
    "api_key": "apiKey",
    "app_code": "appCode",
    "api_secret": "apiSecret",
    "lot_multiplier": "lotMultiplier",
    "max_quantity": "maxQuantity",
    "max_order_value": "maxOrderValue",
    "max_daily_loss": "maxDailyLoss",
    "allowed_instruments": "allowedInstruments",
    "allowed_product_types": "allowedProductTypes",
    "trading_symbol": "symbol",
    "order_type": "orderType",
    "trigger_price": "triggerPrice",
    "__all__": "nonField",
}

api = NinjaAPI(
    title="copytrade API",
    version="1",
    description=__doc__,
    auth=PEOPLE,
    urls_namespace="api",
    docs_url=None,  # the docs page loads scripts from a CDN; the OpenAPI document is enough
)

ERRORS: dict[int, type[BaseModel]] = {
    400: ErrorEnvelope,
    401: ErrorEnvelope,
    403: ErrorEnvelope,
    404: ErrorEnvelope,
}


# --- The envelope -------------------------------------------------------------------------------
def ok(message: str, data: Any) -> dict[str, Any]:
    return {"ok": True, "message": message, "data": data, "error": None}


def error_body(
    message: str, code: str, fields: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    return {
        "ok": False,
        "message": message,
        "data": None,
        "error": {"code": code, "fields": fields or {}},
    }


def error_response(
    request: HttpRequest,
    status: int,
    message: str,
    code: str,
    fields: dict[str, list[str]] | None = None,
) -> HttpResponse:
    response = api.create_response(request, error_body(message, code, fields), status=status)
    response["Cache-Control"] = "no-store"
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="copytrade"'
    return response


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    429: "throttled",
    503: "unavailable",
}


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "payload", "params")]
    if not parts:
        return "nonField"
    head = parts[0]
    name = API_FIELD_NAMES.get(head, head)
    return ".".join([name, *parts[1:]])


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields: dict[str, list[str]] = {}
    for err in exc.errors:
        message = str(err.get("msg", "Invalid value."))
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        name = _field_name(err.get("loc", ()))
        head, sep, rest = message.partition(": ")
        if name == "nonField" and sep and head.isidentifier():
            name, message = head, rest  # a cross-field check names its field: "price: ..."
        fields.setdefault(name, []).append(message)
    return error_response(request, 400, INVALID_INPUT, "validation_error", fields)


@api.exception_handler(DjangoValidationError)
def _service_validation_error(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    if hasattr(exc, "error_dict"):
        fields = {
            API_FIELD_NAMES.get(name, name): [str(m) for m in messages]
            for name, messages in exc.message_dict.items()
        }
    else:
        fields = {"nonField": [str(m) for m in exc.messages]}
    return error_response(request, 400, INVALID_INPUT, "validation_error", fields)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(request, 401, UNAUTHENTICATED, "unauthenticated")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 403 and "CSRF" in exc.message:
        return error_response(request, 403, CSRF_FAILED, "csrf_failed")
    code = _STATUS_CODES.get(exc.status_code, "error")
    return error_response(request, exc.status_code, exc.message, code)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(request, 404, str(exc) or NOT_FOUND, "not_found")


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return error_response(request, 403, str(exc) or NOT_ALLOWED, "forbidden")


@api.exception_handler(Exception)
def _internal(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("api error on %s %s", request.method, request.path)
    return error_response(request, 500, INTERNAL_ERROR, "internal_error")


# --- Who is asking ------------------------------------------------------------------------------
def _user(request: HttpRequest) -> User:
    user = request.auth  # type: ignore[attr-defined]
    assert isinstance(user, User)  # api.auth admits masters and followers only
    return user


def _master(request: HttpRequest) -> Master:
    master = selectors.master_of(_user(request))
    if master is None:
        raise HttpError(403, MASTERS_ONLY)
    return master


# --- Serialisers --------------------------------------------------------------------------------
def follower_out(follower: Follower) -> dict[str, Any]:
    account = getattr(follower.user, "broker_account", None)
    return {
        "followerId": follower.pk,
        "loginUsername": follower.user.get_username(),
        "displayName": follower.display_name,
        "clientId": account.client_id if account else "",
        "loginMethod": account.login_method if account else "",
        "apiKeyLast4": account.api_key_hint if account else "",
        "lotMultiplier": follower.lot_multiplier,
        "maxQuantity": follower.max_quantity,
        "maxOrderValue": follower.max_order_value,
        "maxDailyLoss": follower.max_daily_loss,
        "allowedInstruments": list(follower.allowed_instruments or []),
        "allowedProductTypes": list(follower.allowed_product_types or []),
        "paused": follower.is_paused,
        "active": follower.is_active,
        "createdAt": follower.created_at,
    }


def copy_trade_out(trade: CopyTrade) -> dict[str, Any]:
    return {
        "id": trade.pk,
        "masterId": trade.master_id,
        "followerId": trade.follower_id,
        "symbol": trade.trading_symbol,
        "exchange": trade.exchange,
        "side": trade.side,
        "masterQty": trade.master_quantity,
        "followerQty": trade.quantity,
        "filledQty": trade.filled_quantity,
        "price": trade.price,
        "averagePrice": trade.average_price,
        "orderType": trade.order_type,
        "product": trade.product,
        "status": trade.status,
        "reason": trade.reason,
        "reasonCode": trade.reason_code,
        "manual": trade.manual,
        "leg": trade.leg,
        "brokerOrderId": trade.broker_order_id,
        "timestamp": trade.decided_at,
    }


# --- Followers ----------------------------------------------------------------------------------
@api.post(
    "/followers/register-api-key",
    auth=MASTERS,
    response={200: Envelope[RegisteredFollowerOut], **ERRORS},
    summary="Register a follower; the response carries its one-time login",
)
def register_api_key(request: HttpRequest, payload: FollowerRegisterIn) -> Any:
    from accounts import services

    master = _master(request)
    login = services.register_follower(
        master=master,
        actor=_user(request),
        display_name=payload.displayName or payload.clientId,
        client_id=payload.clientId,
        login_method=payload.loginMethod,
        api_key=payload.apiKey,
        app_code=payload.appCode,
        api_secret=payload.apiSecret,
        lot_multiplier=payload.lotMultiplier,
        max_quantity=payload.maxQuantity,
        max_order_value=payload.maxOrderValue,
        max_daily_loss=payload.maxDailyLoss,
        allowed_instruments=payload.allowedInstruments,
        allowed_product_types=payload.allowedProductTypes,
        request=request,
    )
    follower = selectors.followers_for(_user(request)).get(pk=login.follower.pk)
    data = follower_out(follower)
    data["loginUsername"] = login.username
    data["loginPassword"] = login.password.reveal()
    response = api.create_response(
        request,
        ok("Follower registered. The password is shown only this once.", data),
        status=200,
    )
    response["Cache-Control"] = "no-store"
    return response


@api.get(
    "/followers/list",
    auth=MASTERS,
    response={200: Envelope[list[FollowerOut]], **ERRORS},
    summary="The master's followers",
)
def followers_list(request: HttpRequest) -> Any:
    _master(request)
    followers = [follower_out(f) for f in selectors.followers_for(_user(request))]
    return ok(f"{len(followers)} follower(s).", followers)


# --- Copy trades --------------------------------------------------------------------------------
class CopyTradeQuery(BaseModel):
    followerId: int | None = Field(
        default=None,
        ge=1,
        le=2**63 - 1,
        description="a master: one follower's copies; a follower always gets its own",
    )
    status: Status | None = None
    limit: int = Field(default=100, ge=1, le=500)
    beforeId: int | None = Field(
        default=None, ge=1, le=2**63 - 1, description="page back: copies older than this id"
    )


@api.get(
    "/followers/copy-trades",
    response={200: Envelope[list[CopyTradeOut]], **ERRORS},
    summary="Copy trades, newest first",
)
def copy_trades(request: HttpRequest, params: Query[CopyTradeQuery]) -> Any:
    user = _user(request)
    trades = selectors.copy_trades_for(user).order_by("-id")
    if user.role == User.Role.MASTER and params.followerId is not None:
        if not selectors.followers_for(user).filter(pk=params.followerId).exists():
            raise Http404(FOLLOWER_NOT_FOUND)
        trades = trades.filter(follower_id=params.followerId)
    if params.status:
        trades = trades.filter(status=params.status)
    if params.beforeId:
        trades = trades.filter(pk__lt=params.beforeId)
    rows = [copy_trade_out(t) for t in trades[: params.limit]]
    return ok(f"{len(rows)} copy trade(s).", rows)


@api.post(
    "/followers/copy-trades-log",
    auth=MASTERS,
    response={200: Envelope[ManualCopyOut], **ERRORS},
    summary="A manual copy trade, fanned out to every active follower like a master order",
)
def manual_copy(request: HttpRequest, payload: ManualCopyIn) -> Any:
    from trading import services

    master = _master(request)
    order = services.create_manual_copy(
        master=master,
        actor=_user(request),
        exchange=payload.exchange,
        symbol=payload.symbol,
        side=payload.side,
        quantity=payload.quantity,
        order_type=payload.orderType,
        product=payload.product,
        price=payload.price,
        trigger_price=payload.triggerPrice,
        request=request,
    )
    copies = [copy_trade_out(c) for c in services.manual_copy_trades(order)]
    return ok(MANUAL_RECORDED, {"masterOrderId": order.pk, "copyTrades": copies})


@api.patch(
    "/followers/copy-trades-log",
    response={200: Envelope[CopyTradeOut], **ERRORS, 409: ErrorEnvelope},
    summary="Cancel a PENDING copy trade (it loses cleanly to the copier's claim)",
)
def cancel_copy_trade(request: HttpRequest, payload: CopyTradeStatusIn) -> Any:
    from trading import services

    user = _user(request)
    if payload.status != CopyTrade.Status.CANCELLED:
        return error_response(
            request, 400, ONLY_CANCEL, "status_change_refused", {"status": [ONLY_CANCEL]}
        )
    if not selectors.copy_trades_for(user).filter(pk=payload.id).exists():
        raise Http404(COPY_TRADE_NOT_FOUND)
    try:
        trade = services.cancel_copy_trade(copy_trade_id=payload.id, actor=user, request=request)
    except services.CopyTradeNotPending as exc:
        return error_response(request, 409, str(exc), "not_pending")
    return ok("Copy trade cancelled.", copy_trade_out(trade))
