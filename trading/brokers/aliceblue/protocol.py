"""The AliceBlue wire protocol, both generations, without I/O.

Every operation is two pure steps: build a `Call` (method, URL, headers, JSON body, plus the
parser for its answer), then `interpret(call, Raw(status, headers, body))` → a typed result
or a typed error (`errors.py`). The synchronous and asynchronous transports in
`transport.py` only move bytes; no path, field or status spelling lives anywhere else.

Request shapes follow the official SDKs byte for byte where it matters (captures in
shared/aliceblue/captures): Open API as Ant-A3-tradehub-sdk 1.1.7 sends it, ANT API as pya3
1.0.30 does.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from copytrade.lib.secret import Secret
from trading.brokers.aliceblue import mapping
from trading.brokers.aliceblue.errors import (
    AmbiguousOrder,
    BrokerError,
    BrokerUnavailable,
    LoginRejected,
    NeedsDailyLogin,
    PushNotEnabled,
    RateLimited,
    Rejected,
    SessionExpired,
    excerpt,
)
from trading.brokers.aliceblue.mapping import Dialect, LotTable, NoLots
from trading.brokers.aliceblue.types import (
    Funds,
    Generation,
    Holding,
    ModifyRequest,
    OrderAck,
    OrderRequest,
    OrderRow,
    OrderStatus,
    OrderType,
    Position,
    Profile,
    Quote,
    SessionGrant,
    Trade,
)

IST = ZoneInfo("Asia/Kolkata")
T = TypeVar("T")

OPEN_API_PREFIX = "/open-api/od/v1/"
ANT_API_PREFIX = "/rest/AliceBlueAPIService/api/"
# What pya3 sends on every ANT REST call (capture pya3-1.0.30).
ANT_HEADERS = {"X-SAS-Version": "2.0", "User-Agent": "Codifi API Connect - Python Lib 1.0.30"}


class Kind(enum.Enum):
    ORDER = "order"  # place / modify / cancel: not rate-limited; ambiguous when unanswered
    QUERY = "query"  # everything else: counted against the request budget
    LOGIN = "login"  # session creation steps


@dataclass(frozen=True, slots=True)
class Raw:
    """What came back: HTTP status, headers (lower-case names) and the body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Call(Generic[T]):
    op: str
    kind: Kind
    method: str
    url: str
    headers: Mapping[str, str]
    body: Any | None
    parse: Callable[[Raw], T] = field(repr=False, compare=False)
    tag: str = ""
    broker_order_id: str = ""

    def body_bytes(self) -> bytes | None:
        """The JSON body exactly as `requests` would encode it (json.dumps defaults)."""
        if self.body is None:
            return None
        return json.dumps(self.body).encode()

    def wire_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.body is not None:
            headers["Content-Type"] = "application/json"
        return headers


# --- Value parsing helpers -------------------------------------------------------------------
_EMPTY = {"", "--", "NA", "N/A", "NULL", "NONE", "NAN", "-"}


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip().upper() in _EMPTY)


def dec(value: object) -> Decimal | None:
    if _blank(value) or isinstance(value, bool):
        return None
    try:
        result = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def price(value: object) -> Decimal | None:
    """A price; zero means "none" in AliceBlue books (market orders, no fill yet)."""
    result = dec(value)
    return None if result is None or result == 0 else result


def num(value: object) -> int:
    result = dec(value)
    return int(result) if result is not None else 0


def text(value: object) -> str:
    return "" if _blank(value) else str(value).strip()


_TIME_FORMATS = (
    "%d-%b-%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%b %d %Y %H:%M:%S",
    "%H:%M:%S %d-%m-%Y",
    "%d-%m-%Y %H:%M:%S",
    "%d-%b-%Y %H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S.%f",
)


def when(value: object) -> datetime | None:
    """An aware datetime from any AliceBlue time spelling (IST wall time or epoch s/ms)."""
    if _blank(value) or isinstance(value, bool):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        number = float(value)
        if number <= 0:
            return None
        if number > 1e11:  # milliseconds
            number /= 1000
        return datetime.fromtimestamp(number, tz=IST)
    raw = re.sub(r"\s+", " ", str(value).strip())
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=IST)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=IST)


def wire_price(value: Decimal | None) -> str:
    """Open API prices are strings without exponent or trailing zeros ("1450.5", "1400")."""
    if value is None:
        return ""
    normalised = value.normalize()
    return format(normalised, "f")


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def open_api_checksum(user_id: str, auth_code: str, api_secret: str) -> str:
    """sha256(userId + authCode + apiSecret), lower-case hex (TradeHub upper-cases the id)."""
    return sha256_hex(user_id.upper() + auth_code + api_secret)


def ant_user_data(user_id: str, api_key: str, enc_key: str) -> str:
    """sha256(USERID + apiKey + encKey), lower-case hex (pya3)."""
    return sha256_hex(user_id.upper() + api_key + enc_key)


# --- Answer interpretation -------------------------------------------------------------------
_EC_CODE = re.compile(r"\bEC\d{3}\b")
_SESSION_TEXTS = ("session expired", "invalid session", "session invalid", "unauthori")
_DAILY_LOGIN_TEXTS = ("does not login", "not logged in", "user not login", "please login")


def _decode_json(call: Call[Any], raw: Raw) -> Any:
    try:
        return json.loads(raw.body)
    except (ValueError, UnicodeDecodeError):
        raise _unusable(call, raw, "answer is not JSON") from None


def _unusable(call: Call[Any], raw: Raw, why: str) -> BrokerError:
    """No usable answer: ambiguous for an order call, unavailable otherwise."""
    body = excerpt(raw.body)
    status = raw.status
    if 400 <= status < 500:
        # The broker refused the request outright (an HTTP client error): nothing was done.
        return Rejected(f"HTTP{status}", "request refused", op=call.op, excerpt=body)
    if call.kind is Kind.ORDER:
        return AmbiguousOrder(
            f"{why} (HTTP {status}); the order may exist",
            op=call.op,
            excerpt=body,
            tag=call.tag,
            broker_order_id=call.broker_order_id,
            status_code=status,
        )
    return BrokerUnavailable(f"{why} (HTTP {status})", op=call.op, excerpt=body, status_code=status)


def _retry_after(raw: Raw) -> float | None:
    value = raw.headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def interpret(call: Call[T], raw: Raw) -> T:
    """Turn an HTTP answer into the call's typed result or a typed error. Never lets a
    KeyError, JSON error or HTML body escape."""
    if raw.status == 401:
        if call.kind is Kind.LOGIN:
            raise LoginRejected("HTTP401", "login refused", op=call.op, excerpt=excerpt(raw.body))
        raise SessionExpired("session expired (HTTP 401)", op=call.op, excerpt=excerpt(raw.body))
    if raw.status == 429:
        raise RateLimited(
            "rate limited by the broker (HTTP 429)",
            op=call.op,
            excerpt=excerpt(raw.body),
            retry_after=_retry_after(raw),
        )
    if raw.status >= 500:
        raise _unusable(call, raw, "broker error")
    try:
        return call.parse(raw)
    except BrokerError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, InvalidOperation):
        raise _unusable(call, raw, "unexpected answer") from None


def _error_text(data: Mapping[str, Any]) -> str:
    for key in ("emsg", "Emsg", "message", "infoMessage", "error", "Result"):
        value = data.get(key)
        if value and isinstance(value, str):
            return value.strip()
    return ""


def _g3_failure(call: Call[Any], data: Any, raw: Raw, empty_codes: frozenset[str]) -> Any:
    """Raise the typed error for a non-Ok Open API envelope, or return [] for "no data"."""
    if not isinstance(data, Mapping):
        raise _unusable(call, raw, "unexpected answer")
    fields = " ".join(
        str(data.get(k) or "") for k in ("status", "stat", "message", "emsg", "infoMessage")
    )
    match = _EC_CODE.search(fields)
    code = match.group(0) if match else ""
    message = _error_text(data)
    if message == code:
        message = ""
    lowered = fields.lower()
    if code == "EC087" or any(t in lowered for t in _SESSION_TEXTS):
        raise SessionExpired(f"session expired {code}".strip(), op=call.op)
    if code in empty_codes or "no data" in lowered or "no record" in lowered:
        return []
    if not code and not message:
        raise _unusable(call, raw, "unexpected answer")
    raise Rejected(code or "NOT_OK", message, op=call.op)


def g3_result(
    call: Call[Any], raw: Raw, empty_codes: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """The `result` list of an Open API envelope (errors raised, "no data" → [])."""
    data = _decode_json(call, raw)
    if isinstance(data, Mapping) and str(data.get("status", "")).strip().lower() == "ok":
        result = data.get("result")
        if result is None:
            return []
        if isinstance(result, Mapping):
            return [dict(result)]
        if not isinstance(result, list):
            raise _unusable(call, raw, "unexpected answer")
        return [dict(row) for row in result if isinstance(row, Mapping)]
    failure: list[dict[str, Any]] = _g3_failure(call, data, raw, empty_codes)
    return failure


def _g2_not_ok(data: Any) -> bool:
    return isinstance(data, Mapping) and str(data.get("stat", "ok")).strip().lower() != "ok"


def _g2_failure(call: Call[Any], data: Mapping[str, Any], *, empty_ok: bool) -> list[Any]:
    message = _error_text(data)
    lowered = message.lower()
    if any(t in lowered for t in _SESSION_TEXTS) or lowered.startswith("401"):
        raise SessionExpired(message or "session expired", op=call.op)
    if empty_ok and ("no data" in lowered or "no record" in lowered or "not found" in lowered):
        return []
    raise Rejected("NOT_OK", message or "refused", op=call.op)


def g2_rows(call: Call[Any], raw: Raw, *, empty_ok: bool = True) -> list[dict[str, Any]]:
    """An ANT API answer that should be a list of rows (or an error object)."""
    data = _decode_json(call, raw)
    if isinstance(data, list):
        rows = [row for row in data if isinstance(row, Mapping)]
        if len(rows) == 1 and _g2_not_ok(rows[0]):
            return _g2_failure(call, rows[0], empty_ok=empty_ok)
        return [dict(r) for r in rows]
    if isinstance(data, Mapping):
        if _g2_not_ok(data):
            return _g2_failure(call, data, empty_ok=empty_ok)
        return [dict(data)]
    raise _unusable(call, raw, "unexpected answer")


def g2_object(call: Call[Any], raw: Raw) -> dict[str, Any]:
    data = _decode_json(call, raw)
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], Mapping):
        data = data[0]
    if not isinstance(data, Mapping):
        raise _unusable(call, raw, "unexpected answer")
    if _g2_not_ok(data):
        _g2_failure(call, data, empty_ok=False)
    return dict(data)


_G2_ORDER_NO = re.compile(r"\d{6,}")


def _g2_order_number(value: object) -> tuple[str, str]:
    """'220909000171690-after market order req received' → ('220909000171690', note)."""
    raw = str(value or "").strip()
    match = _G2_ORDER_NO.search(raw)
    if not match:
        raise ValueError("no order number")
    note = raw[match.end() :].strip(" -:")
    return match.group(0), note


# --- The generations ---------------------------------------------------------------------------
@dataclass
class Endpoints:
    open_api: str
    ant_api: str
    login: str
    order_ws: str
    ant_order_ws: str

    @classmethod
    def from_settings(cls) -> Endpoints:
        from django.conf import settings

        return cls(
            open_api=settings.ALICEBLUE_OPEN_API_URL.rstrip("/"),
            ant_api=settings.ALICEBLUE_ANT_API_URL.rstrip("/"),
            login=settings.ALICEBLUE_LOGIN_URL,
            order_ws=settings.ALICEBLUE_ORDER_WS_URL,
            ant_order_ws=settings.ALICEBLUE_ANT_ORDER_WS_URL,
        )


class Api:
    """Builds the calls of one account's session. Subclasses: `OpenApi`, `AntApi`."""

    generation: Generation

    def __init__(
        self,
        *,
        endpoints: Endpoints,
        client_id: str,
        session: Secret,
        dialect: Dialect | None = None,
        lots: LotTable | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.client_id = client_id.strip().upper()
        self.session = session
        self.dialect = dialect or Dialect()
        self.lots: LotTable = lots or NoLots()

    # quantity conversions (MCX lots) ------------------------------------------------------
    def _qty_out(self, exchange: str, token: str, tsym: str, quantity: int) -> int:
        return mapping.quantity_to_wire(
            exchange=exchange,
            token=token,
            trading_symbol=tsym,
            quantity=quantity,
            dialect=self.dialect,
            lots=self.lots,
        )

    def _qty_in(self, exchange: str, token: str, tsym: str, quantity: int) -> int:
        return mapping.quantity_from_wire(
            exchange=exchange,
            token=token,
            trading_symbol=tsym,
            quantity=quantity,
            dialect=self.dialect,
            lots=self.lots,
        )

    def _signed_qty(self, exchange: str, token: str, tsym: str, value: int) -> int:
        sign = -1 if value < 0 else 1
        return sign * self._qty_in(exchange, token, tsym, abs(value))

    # the operations every generation offers -------------------------------------------------
    def _url(self, path: str) -> str:
        raise NotImplementedError

    def _headers(self) -> dict[str, str]:
        raise NotImplementedError

    def _call(
        self,
        op: str,
        kind: Kind,
        method: str,
        path: str,
        body: Any,
        parse: Callable[[Call[Any], Raw], T],
        **extra: str,
    ) -> Call[T]:
        """A call to this generation's ``path``; ``parse`` gets the call and the raw answer."""
        holder: dict[str, Call[T]] = {}
        call: Call[T] = Call(
            op=op,
            kind=kind,
            method=method,
            url=self._url(path),
            headers=self._headers(),
            body=body,
            parse=lambda raw: parse(holder["call"], raw),
            **extra,
        )
        holder["call"] = call
        return call

    def place_order(self, order: OrderRequest) -> Call[OrderAck]:
        raise NotImplementedError

    def modify_order(self, change: ModifyRequest) -> Call[OrderAck]:
        raise NotImplementedError

    def cancel_order(self, broker_order_id: str) -> Call[OrderAck]:
        raise NotImplementedError

    def order_book(self) -> Call[list[OrderRow]]:
        raise NotImplementedError

    def order_history(self, broker_order_id: str) -> Call[list[OrderRow]]:
        raise NotImplementedError

    def trade_book(self) -> Call[list[Trade]]:
        raise NotImplementedError

    def positions(self) -> Call[list[Position]]:
        raise NotImplementedError

    def holdings(self) -> Call[list[Holding]]:
        raise NotImplementedError

    def funds(self) -> Call[Funds]:
        raise NotImplementedError

    def profile(self) -> Call[Profile]:
        raise NotImplementedError

    def quote(self, exchange: str, token: str) -> Call[Quote]:
        raise NotImplementedError

    def ws_token(self) -> Call[Secret]:
        raise NotImplementedError

    @property
    def order_ws_url(self) -> str:
        raise NotImplementedError


def _parse_ws_token(call: Call[Any], raw: Raw) -> Secret:
    if not raw.body.strip():
        raise PushNotEnabled("order-update push is not enabled for this account", op=call.op)
    rows = g3_result(call, raw)
    token = text(rows[0].get("orderToken")) if rows else ""
    if not token:
        raise PushNotEnabled("order-update push is not enabled for this account", op=call.op)
    return Secret(token)


class OpenApi(Api):
    """G3 "Open API": Bearer <userSession>, {"status","message","result"} envelopes."""

    generation = Generation.OPEN_API

    def _url(self, path: str) -> str:
        return self.endpoints.open_api + OPEN_API_PREFIX + path

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.session.reveal()}"}

    # orders --------------------------------------------------------------------------------
    def place_order(self, order: OrderRequest) -> Call[OrderAck]:
        body = [
            {
                "instrumentId": order.token,
                "exchange": order.exchange,
                "transactionType": mapping.side_to_g3(order.side),
                "quantity": self._qty_out(
                    order.exchange, order.token, order.trading_symbol, order.quantity
                ),
                "orderComplexity": mapping.complexity_to_g3(order.complexity),
                "product": mapping.product_to_g3(order.product, self.dialect),
                "orderType": mapping.order_type_to_g3(order.order_type),
                "price": wire_price(order.price)
                if order.order_type in (OrderType.LIMIT, OrderType.SL)
                else "",
                "slTriggerPrice": wire_price(order.trigger_price)
                if order.order_type in (OrderType.SL, OrderType.SLM)
                else "",
                "slLegPrice": "",
                "trailingSlAmount": "",
                "targetLegPrice": "",
                "validity": order.validity.value,
                "disclosedQuantity": "",
                "marketProtectionPercent": "",
                "apiOrderSource": "",
                "algoId": "",
                "orderTag": order.tag,
            }
        ]
        return self._call(
            "place_order", Kind.ORDER, "POST", "orders/placeorder", body, self._ack, tag=order.tag
        )

    def modify_order(self, change: ModifyRequest) -> Call[OrderAck]:
        body = {
            "brokerOrderId": change.broker_order_id,
            "quantity": str(
                self._qty_out(change.exchange, change.token, change.trading_symbol, change.quantity)
            ),
            "orderType": mapping.order_type_to_g3(change.order_type),
            "slTriggerPrice": wire_price(change.trigger_price)
            if change.order_type in (OrderType.SL, OrderType.SLM)
            else "",
            "price": wire_price(change.price)
            if change.order_type in (OrderType.LIMIT, OrderType.SL)
            else "",
            "slLegPrice": "",
            "trailingSLAmount": "",
            "targetLegPrice": "",
            "validity": change.validity.value,
            "disclosedQuantity": "",
            "marketProtectionPrecent": "",  # sic: TradeHub's spelling
            "deviceId": "",
        }
        return self._call(
            "modify_order",
            Kind.ORDER,
            "POST",
            "orders/modify",
            body,
            self._ack,
            broker_order_id=change.broker_order_id,
        )

    def cancel_order(self, broker_order_id: str) -> Call[OrderAck]:
        return self._call(
            "cancel_order",
            Kind.ORDER,
            "POST",
            "orders/cancel",
            {"brokerOrderId": broker_order_id},
            self._ack,
            broker_order_id=broker_order_id,
        )

    def _ack(self, call: Call[Any], raw: Raw) -> OrderAck:
        rows = g3_result(call, raw)
        if not rows:
            raise _unusable(call, raw, "acknowledgement without an order")
        row = rows[0]
        own_status = str(row.get("status", "ok") or "ok").strip().lower()
        order_id = text(row.get("brokerOrderId") or row.get("nestOrderNumber"))
        if own_status != "ok":
            message = _error_text(row)
            match = _EC_CODE.search(f"{row.get('status', '')} {message}")
            raise Rejected(match.group(0) if match else "NOT_OK", message, op=call.op)
        if not order_id:
            if call.op == "place_order":
                raise _unusable(call, raw, "acknowledgement without an order id")
            order_id = call.broker_order_id
        return OrderAck(broker_order_id=order_id, request_time=when(row.get("requestTime")))

    # books -----------------------------------------------------------------------------------
    def order_book(self) -> Call[list[OrderRow]]:
        return self._call(
            "order_book",
            Kind.QUERY,
            "GET",
            "orders/book",
            None,
            lambda call, raw: [
                self._order_row(r) for r in g3_result(call, raw, frozenset({"EC916"}))
            ],
        )

    def order_history(self, broker_order_id: str) -> Call[list[OrderRow]]:
        return self._call(
            "order_history",
            Kind.QUERY,
            "POST",
            "orders/history",
            {"brokerOrderId": broker_order_id},
            lambda call, raw: [
                self._order_row(r) for r in g3_result(call, raw, frozenset({"EC918"}))
            ],
        )

    def _order_row(self, r: Mapping[str, Any]) -> OrderRow:
        exchange = text(r.get("exchange"))
        token = text(r.get("instrumentId"))
        tsym = text(r.get("tradingSymbol"))

        def qty(key: str) -> int:
            return self._qty_in(exchange, token, tsym, num(r.get(key)))

        raw_status = text(r.get("orderStatus") or r.get("status"))
        return OrderRow(
            broker_order_id=text(r["brokerOrderId"]),
            status=mapping.parse_status(raw_status),
            raw_status=raw_status,
            exchange=exchange,
            token=token,
            trading_symbol=tsym,
            side=mapping.parse_side(r.get("transactionType")),
            quantity=qty("quantity"),
            filled_quantity=qty("filledQuantity"),
            pending_quantity=qty("pendingQuantity"),
            cancelled_quantity=qty("cancelledQuantity"),
            price=price(r.get("price")),
            trigger_price=price(r.get("slTriggerPrice")),
            average_price=price(r.get("averageTradedPrice")),
            order_type=mapping.parse_order_type(r.get("orderType")),
            product=mapping.parse_product(r.get("product")),
            complexity=mapping.parse_complexity(r.get("orderComplexity")),
            validity=mapping.parse_validity(r.get("validity")),
            tag=text(r.get("orderTag")),
            rejection_reason=text(r.get("rejectionReason")),
            order_time=when(r.get("orderTime")),
            exchange_time=when(r.get("exchangeUpdateTime") or r.get("exchangeTimestamp")),
            exchange_order_id=text(r.get("exchangeOrderId")),
            raw=dict(r),
        )

    def trade_book(self) -> Call[list[Trade]]:
        def parse(call: Call[Any], raw: Raw) -> list[Trade]:
            trades = []
            for r in g3_result(call, raw, frozenset({"EC926"})):
                exchange = text(r.get("exchange"))
                token = text(r.get("instrumentId"))
                tsym = text(r.get("tradingSymbol"))
                fill = price(r.get("tradedPrice"))
                trades.append(
                    Trade(
                        broker_order_id=text(r["brokerOrderId"]),
                        trade_id=text(r.get("exchangeTradeId")),
                        exchange=exchange,
                        token=token,
                        trading_symbol=tsym,
                        side=mapping.parse_side(r.get("transactionType")),
                        product=mapping.parse_product(r.get("product")),
                        quantity=self._qty_in(exchange, token, tsym, num(r.get("filledQuantity"))),
                        price=fill,
                        average_price=price(r.get("averageTradedPrice")) or fill,
                        tag=text(r.get("orderTag")),
                        fill_time=when(r.get("fillTimestamp") or r.get("orderTime")),
                        exchange_order_id=text(r.get("exchangeOrderId")),
                        raw=dict(r),
                    )
                )
            return trades

        return self._call("trade_book", Kind.QUERY, "GET", "orders/trades", None, parse)

    def positions(self) -> Call[list[Position]]:
        def parse(call: Call[Any], raw: Raw) -> list[Position]:
            out = []
            for r in g3_result(call, raw, frozenset({"EC920"})):
                exchange = text(r.get("exchange"))
                token = text(r.get("instrumentId"))
                tsym = text(r.get("tradingSymbol"))

                def qty(
                    key: str,
                    r: Mapping[str, Any] = r,
                    where: tuple[str, str, str] = (exchange, token, tsym),
                ) -> int:
                    return self._signed_qty(*where, num(r.get(key)))

                out.append(
                    Position(
                        exchange=exchange,
                        token=token,
                        trading_symbol=tsym,
                        product=mapping.parse_product(r.get("product")),
                        net_quantity=qty("netQuantity"),
                        buy_quantity=qty("buyQuantity"),
                        sell_quantity=qty("sellQuantity"),
                        buy_average=price(r.get("buyPrice") or r.get("dayBuyPrice")),
                        sell_average=price(r.get("sellPrice") or r.get("daySellPrice")),
                        net_average=price(r.get("netAveragePrice")),
                        realised_pnl=dec(r.get("realizedPnl")),
                        unrealised_pnl=dec(r.get("unrealizedPnl")),
                        ltp=price(r.get("ltp")),
                        raw=dict(r),
                    )
                )
            return out

        return self._call("positions", Kind.QUERY, "GET", "positions", None, parse)

    def holdings(self) -> Call[list[Holding]]:
        def parse(call: Call[Any], raw: Raw) -> list[Holding]:
            return [
                Holding(
                    isin=text(r.get("isin")),
                    exchange="NSE" if text(r.get("nseInstrumentId")) else "BSE",
                    token=text(r.get("nseInstrumentId") or r.get("bseInstrumentId")),
                    trading_symbol=text(r.get("nseTradingSymbol") or r.get("bseTradingSymbol")),
                    quantity=num(r.get("totalQuantity")),
                    sellable_quantity=num(r.get("sellableQty")),
                    average_price=price(r.get("averageTradedPrice")),
                    ltp=price(r.get("ltp")),
                    raw=dict(r),
                )
                for r in g3_result(call, raw, frozenset({"EC922"}))
            ]

        return self._call("holdings", Kind.QUERY, "GET", "holdings/CNC", None, parse)

    def funds(self) -> Call[Funds]:
        def parse(call: Call[Any], raw: Raw) -> Funds:
            rows = g3_result(call, raw)
            if not rows:
                raise _unusable(call, raw, "no limits row")
            r = rows[0]
            return Funds(
                available_cash=dec(r.get("tradingLimit")),
                utilised_margin=dec(r.get("utilizedMargin")),
                net=dec(r.get("tradingLimit")),
                raw=dict(r),
            )

        return self._call("funds", Kind.QUERY, "GET", "limits/", None, parse)

    def profile(self) -> Call[Profile]:
        def parse(call: Call[Any], raw: Raw) -> Profile:
            rows = g3_result(call, raw)
            if not rows:
                raise _unusable(call, raw, "no profile row")
            r = rows[0]
            return Profile(
                client_id=text(r["clientId"]),
                name=text(r.get("clientName")),
                exchanges=tuple(str(x) for x in r.get("exchanges") or ()),
                products=tuple(str(x) for x in r.get("products") or ()),
                raw=dict(r),
            )

        return self._call("profile", Kind.QUERY, "GET", "profile/", None, parse)

    def quote(self, exchange: str, token: str) -> Call[Quote]:
        # The Open API documents no single-scrip quote. Its session is accepted on the ANT
        # ScripDetails endpoint with the ANT header form (PROTOCOL.md §1, S20, UNCONFIRMED).
        call = AntApi(
            endpoints=self.endpoints,
            client_id=self.client_id,
            session=self.session,
            dialect=self.dialect,
            lots=self.lots,
        ).quote(exchange, token)
        return call

    def ws_token(self) -> Call[Secret]:
        holder: dict[str, Call[Secret]] = {}
        call: Call[Secret] = Call(
            op="create_ws_token",
            kind=Kind.QUERY,
            method="GET",
            url=self.endpoints.open_api + "/open-api/order-notify/ws/createWsToken",
            headers=self._headers(),
            body=None,
            parse=lambda raw: _parse_ws_token(holder["call"], raw),
        )
        holder["call"] = call
        return call

    @property
    def order_ws_url(self) -> str:
        return self.endpoints.order_ws


class AntApi(Api):
    """G2 "ANT" REST: Bearer <USERID> <sessionID>, bare lists and {"stat"} objects."""

    generation = Generation.ANT

    def _url(self, path: str) -> str:
        return self.endpoints.ant_api + ANT_API_PREFIX + path

    def _headers(self) -> dict[str, str]:
        return {
            **ANT_HEADERS,
            "Authorization": f"Bearer {self.client_id} {self.session.reveal()}",
        }

    @staticmethod
    def _float(value: Decimal | None) -> float | None:
        return float(value) if value is not None else None

    def place_order(self, order: OrderRequest) -> Call[OrderAck]:
        limit_like = order.order_type in (OrderType.LIMIT, OrderType.SL)
        body = [
            {
                "complexty": mapping.complexity_to_g2(order.complexity),
                "discqty": 0,
                "exch": order.exchange,
                "pCode": mapping.product_to_g2(order.product, order.exchange),
                "price": self._float(order.price) if limit_like else 0.0,
                "prctyp": mapping.order_type_to_g2(order.order_type),
                "qty": self._qty_out(
                    order.exchange, order.token, order.trading_symbol, order.quantity
                ),
                "ret": order.validity.value,
                "symbol_id": order.token,
                "trading_symbol": order.trading_symbol,
                "transtype": mapping.side_to_g2(order.side),
                "stopLoss": None,
                "target": None,
                "trailing_stop_loss": None,
                "trigPrice": self._float(order.trigger_price)
                if order.order_type in (OrderType.SL, OrderType.SLM)
                else None,
                "orderTag": order.tag or None,
            }
        ]

        def parse(call: Call[Any], raw: Raw) -> OrderAck:
            rows = g2_rows(call, raw, empty_ok=False)
            if not rows:
                raise _unusable(call, raw, "acknowledgement without an order")
            row = rows[0]
            if _g2_not_ok(row):
                _g2_failure(call, row, empty_ok=False)
            order_id, note = _g2_order_number(row["NOrdNo"])
            return OrderAck(broker_order_id=order_id, note=note)

        return self._call(
            "place_order",
            Kind.ORDER,
            "POST",
            "placeOrder/executePlaceOrder",
            body,
            parse,
            tag=order.tag,
        )

    def _nest_ack(self, call: Call[Any], raw: Raw) -> OrderAck:
        data = g2_object(call, raw)
        value = data.get("nestOrderNumber") or data.get("Result") or data.get("NOrdNo")
        try:
            order_id, _ = _g2_order_number(value)
        except ValueError:
            order_id = call.broker_order_id
        return OrderAck(broker_order_id=order_id)

    def modify_order(self, change: ModifyRequest) -> Call[OrderAck]:
        body = {
            "discqty": 0,
            "exch": change.exchange,
            "nestOrderNumber": change.broker_order_id,
            "prctyp": mapping.order_type_to_g2(change.order_type),
            "price": self._float(change.price)
            if change.order_type in (OrderType.LIMIT, OrderType.SL)
            else 0.0,
            "qty": self._qty_out(
                change.exchange, change.token, change.trading_symbol, change.quantity
            ),
            "trading_symbol": change.trading_symbol,
            "trigPrice": self._float(change.trigger_price)
            if change.order_type in (OrderType.SL, OrderType.SLM)
            else 0.0,
            "transtype": mapping.side_to_g2(change.side),
            "pCode": mapping.product_to_g2(change.product, change.exchange),
        }
        return self._call(
            "modify_order",
            Kind.ORDER,
            "POST",
            "placeOrder/modifyOrder",
            body,
            self._nest_ack,
            broker_order_id=change.broker_order_id,
        )

    def cancel_order(self, broker_order_id: str) -> Call[OrderAck]:
        return self._call(
            "cancel_order",
            Kind.ORDER,
            "POST",
            "placeOrder/cancelOrder",
            {"nestOrderNumber": broker_order_id},
            self._nest_ack,
            broker_order_id=broker_order_id,
        )

    def _book_row(self, r: Mapping[str, Any]) -> OrderRow:
        exchange = text(r.get("Exchange"))
        token = text(r.get("token"))
        tsym = text(r.get("Trsym"))

        def qty(key: str) -> int:
            return self._qty_in(exchange, token, tsym, num(r.get(key)))

        raw_status = text(r.get("Status"))
        prctype = text(r.get("Prctype"))
        complexity = mapping.parse_complexity(r.get("complexty") or r.get("Complexty"))
        if prctype.upper() == "AMO":
            complexity = mapping.Complexity.AMO
        status = mapping.parse_status(raw_status)
        return OrderRow(
            broker_order_id=text(r["Nstordno"]),
            status=status,
            raw_status=raw_status,
            exchange=exchange,
            token=token,
            trading_symbol=tsym,
            side=mapping.parse_side(r.get("Trantype")),
            quantity=qty("Qty"),
            filled_quantity=qty("Fillshares"),
            pending_quantity=qty("Unfilledsize"),
            cancelled_quantity=qty("Cancelqty"),
            price=price(r.get("Prc")),
            trigger_price=price(r.get("Trgprc")),
            average_price=price(r.get("Avgprc")),
            order_type=mapping.parse_order_type(prctype),
            product=mapping.parse_product(r.get("Pcode")),
            complexity=complexity or mapping.Complexity.REGULAR,
            validity=mapping.parse_validity(r.get("Validity")),
            tag=text(r.get("remarks")),
            rejection_reason=text(r.get("RejReason")),
            order_time=when(r.get("OrderedTime") or r.get("orderentrytime")),
            exchange_time=when(r.get("ExchConfrmtime")),
            exchange_order_id=text(r.get("ExchOrdID")),
            raw=dict(r),
        )

    def order_book(self) -> Call[list[OrderRow]]:
        return self._call(
            "order_book",
            Kind.QUERY,
            "GET",
            "placeOrder/fetchOrderBook",
            None,
            lambda call, raw: [self._book_row(r) for r in g2_rows(call, raw)],
        )

    def _history_row(self, r: Mapping[str, Any]) -> OrderRow:
        exchange = text(r.get("exchange"))
        tsym = text(r.get("Trsym"))

        def qty(key: str) -> int:
            return self._qty_in(exchange, "", tsym, num(r.get(key)))

        raw_status = text(r.get("Status"))
        filled = qty("filledShares")
        unfilled = qty("unfilledSize")
        return OrderRow(
            broker_order_id=text(r["nestordernumber"]),
            status=mapping.parse_status(raw_status),
            raw_status=raw_status,
            exchange=exchange,
            token=text(r.get("token")),
            trading_symbol=tsym,
            side=mapping.parse_side(r.get("Action")),
            quantity=qty("Qty"),
            filled_quantity=filled,
            pending_quantity=unfilled,
            cancelled_quantity=0,
            price=price(r.get("Prc")),
            trigger_price=price(r.get("triggerprice")),
            average_price=price(r.get("averageprice")),
            order_type=mapping.parse_order_type(r.get("Ordtype")),
            product=mapping.parse_product(r.get("productcode")),
            complexity=None,
            validity=mapping.parse_validity(r.get("duration")),
            tag=text(r.get("remarks")),
            rejection_reason=text(r.get("rejectionreason")),
            order_time=when(r.get("ExchTimeStamp")),
            exchange_time=when(r.get("exchangetimestamp") or r.get("filldateandtime")),
            exchange_order_id=text(r.get("exchangeorderid")),
            raw=dict(r),
        )

    def order_history(self, broker_order_id: str) -> Call[list[OrderRow]]:
        return self._call(
            "order_history",
            Kind.QUERY,
            "POST",
            "placeOrder/orderHistory",
            {"nestOrderNumber": broker_order_id},
            lambda call, raw: [self._history_row(r) for r in g2_rows(call, raw)],
            broker_order_id=broker_order_id,
        )

    def trade_book(self) -> Call[list[Trade]]:
        def parse(call: Call[Any], raw: Raw) -> list[Trade]:
            trades = []
            for r in g2_rows(call, raw):
                exchange = text(r.get("Exchange"))
                token = text(r.get("Symbol") or r.get("token"))
                tsym = text(r.get("Tsym"))
                trades.append(
                    Trade(
                        broker_order_id=text(r["Nstordno"]),
                        trade_id=text(r.get("FillId")),
                        exchange=exchange,
                        token=token,
                        trading_symbol=tsym,
                        side=mapping.parse_side(r.get("Trantype")),
                        product=mapping.parse_product(r.get("Pcode")),
                        quantity=self._qty_in(exchange, token, tsym, num(r.get("Fillqty"))),
                        price=price(r.get("Price")),
                        average_price=price(r.get("AvgPrice")),
                        tag=text(r.get("remarks")),
                        fill_time=when(r.get("Exchtime") or r.get("iSinceBOE")),
                        exchange_order_id=text(r.get("ExchordID")),
                        raw=dict(r),
                    )
                )
            return trades

        return self._call("trade_book", Kind.QUERY, "GET", "placeOrder/fetchTradeBook", None, parse)

    def positions(self) -> Call[list[Position]]:
        def parse(call: Call[Any], raw: Raw) -> list[Position]:
            out = []
            for r in g2_rows(call, raw):
                exchange = text(r.get("Exchange"))
                token = text(r.get("Token"))
                tsym = text(r.get("Tsym"))

                def qty(
                    key: str,
                    r: Mapping[str, Any] = r,
                    where: tuple[str, str, str] = (exchange, token, tsym),
                ) -> int:
                    return self._signed_qty(*where, num(r.get(key)))

                out.append(
                    Position(
                        exchange=exchange,
                        token=token,
                        trading_symbol=tsym,
                        product=mapping.parse_product(r.get("Pcode")),
                        net_quantity=qty("Netqty"),
                        buy_quantity=qty("Bqty"),
                        sell_quantity=qty("Sqty"),
                        buy_average=price(r.get("Buyavgprc")),
                        sell_average=price(r.get("Sellavgprc")),
                        net_average=price(r.get("NetBuyavgprc") or r.get("BEP")),
                        realised_pnl=dec(r.get("realisedprofitloss")),
                        unrealised_pnl=dec(r.get("unrealisedprofitloss")),
                        ltp=price(r.get("LTP")),
                        raw=dict(r),
                    )
                )
            return out

        return self._call(
            "positions",
            Kind.QUERY,
            "POST",
            "positionAndHoldings/positionBook",
            {"ret": "NET"},
            parse,
        )

    def holdings(self) -> Call[list[Holding]]:
        def parse(call: Call[Any], raw: Raw) -> list[Holding]:
            data = g2_rows(call, raw)
            rows = data[0].get("HoldingVal") if data else None
            return [
                Holding(
                    isin=text(r.get("isin")),
                    exchange=text(r.get("ExchSeg1")) or "NSE",
                    token=text(r.get("Token1")),
                    trading_symbol=text(r.get("Nsetsym") or r.get("Bsetsym")),
                    quantity=num(r.get("Holdqty")),
                    sellable_quantity=num(r.get("SellableQty")),
                    average_price=price(r.get("Price")),
                    ltp=price(r.get("Ltp")),
                    raw=dict(r),
                )
                for r in rows or []
                if isinstance(r, Mapping)
            ]

        return self._call(
            "holdings", Kind.QUERY, "GET", "positionAndHoldings/holdings", None, parse
        )

    def funds(self) -> Call[Funds]:
        def parse(call: Call[Any], raw: Raw) -> Funds:
            rows = g2_rows(call, raw, empty_ok=False)
            if not rows:
                raise _unusable(call, raw, "no limits row")
            chosen = next((r for r in rows if text(r.get("segment")).upper() == "ALL"), rows[0])
            return Funds(
                available_cash=dec(chosen.get("cashmarginavailable")),
                utilised_margin=dec(chosen.get("debits")),
                net=dec(chosen.get("net")),
                raw=rows,
            )

        return self._call("funds", Kind.QUERY, "GET", "limits/getRmsLimits", None, parse)

    def profile(self) -> Call[Profile]:
        def parse(call: Call[Any], raw: Raw) -> Profile:
            r = g2_object(call, raw)
            enabled = [s for s in text(r.get("exchEnabled")).split("|") if s]
            exchanges = tuple(
                dict.fromkeys(mapping.SEGMENT_TO_EXCHANGE.get(s.lower(), s) for s in enabled)
            )
            return Profile(
                client_id=text(r.get("accountId")),
                name=text(r.get("accountName")),
                exchanges=exchanges,
                products=tuple(str(x) for x in r.get("product") or ()),
                raw=dict(r),
            )

        return self._call("profile", Kind.QUERY, "GET", "customer/accountDetails", None, parse)

    def quote(self, exchange: str, token: str) -> Call[Quote]:
        def parse(call: Call[Any], raw: Raw) -> Quote:
            r = g2_object(call, raw)
            ltp = dec(r.get("LTP") if not _blank(r.get("LTP")) else r.get("Ltp"))
            if ltp is None:
                raise _unusable(call, raw, "quote without a last traded price")
            return Quote(exchange=exchange, token=token, ltp=ltp, raw=dict(r))

        return self._call(
            "quote",
            Kind.QUERY,
            "POST",
            "ScripDetails/getScripQuoteDetails",
            {"exch": exchange, "symbol": str(token)},
            parse,
        )

    def ws_token(self) -> Call[Secret]:
        holder: dict[str, Call[Secret]] = {}
        call: Call[Secret] = Call(
            op="create_ws_token",
            kind=Kind.QUERY,
            method="GET",
            url=self.endpoints.ant_api + "/order-notify/ws/createWsToken",
            # pya3 sends the literal word "Token" and no user id here.
            headers={"Authorization": f"Bearer Token {self.session.reveal()}"},
            body=None,
            parse=lambda raw: _parse_ws_token(holder["call"], raw),
        )
        holder["call"] = call
        return call

    @property
    def order_ws_url(self) -> str:
        return self.endpoints.ant_order_ws


def api_for(
    *,
    generation: Generation,
    endpoints: Endpoints,
    client_id: str,
    session: Secret,
    dialect: Dialect | None = None,
    lots: LotTable | None = None,
) -> Api:
    cls: type[Api] = OpenApi if generation == Generation.OPEN_API else AntApi
    return cls(
        endpoints=endpoints, client_id=client_id, session=session, dialect=dialect, lots=lots
    )


# --- Logins ---------------------------------------------------------------------------------------
def oauth_login_url(login_url: str, app_code: str) -> str:
    """Where the account owner signs in: `<login>?appcode=<app code>`."""
    separator = "&" if "?" in login_url else "?"
    return f"{login_url}{separator}{urlencode({'appcode': app_code})}"


def _login_call(
    op: str, url: str, headers: dict[str, str], body: Any, parse: Callable[[Call[Any], Raw], T]
) -> Call[T]:
    holder: dict[str, Call[T]] = {}
    call: Call[T] = Call(
        op=op,
        kind=Kind.LOGIN,
        method="POST",
        url=url,
        headers=headers,
        body=body,
        parse=lambda raw: parse(holder["call"], raw),
    )
    holder["call"] = call
    return call


def _login_failure(call: Call[Any], data: Mapping[str, Any]) -> BrokerError:
    message = _error_text(data) or "login refused"
    lowered = message.lower()
    if any(t in lowered for t in _DAILY_LOGIN_TEXTS):
        return NeedsDailyLogin(message, op=call.op)
    return LoginRejected("NOT_OK", message, op=call.op)


def open_api_session_call(
    endpoints: Endpoints, *, user_id: str, auth_code: str, api_secret: Secret
) -> Call[SessionGrant]:
    """POST vendor/getUserDetails {"checkSum"} → the user's session (OAuth step 5)."""
    checksum = Secret(open_api_checksum(user_id, auth_code, api_secret.reveal()))

    def parse(call: Call[Any], raw: Raw) -> SessionGrant:
        data = _decode_json(call, raw)
        if not isinstance(data, Mapping):
            raise _unusable(call, raw, "unexpected answer")
        ok = str(data.get("stat") or data.get("status") or "").strip().lower() == "ok"
        session = text(data.get("userSession"))
        client_id = text(data.get("clientId")) or user_id
        if ok and not session:
            result = data.get("result")
            if isinstance(result, list) and result and isinstance(result[0], Mapping):
                session = text(result[0].get("accessToken") or result[0].get("userSession"))
        if not ok or not session:
            raise _login_failure(call, data)
        return SessionGrant(
            generation=Generation.OPEN_API, client_id=client_id.upper(), token=Secret(session)
        )

    return _login_call(
        "get_user_details",
        endpoints.open_api + OPEN_API_PREFIX + "vendor/getUserDetails",
        {"Authorization": ""},
        {"checkSum": checksum.reveal()},
        parse,
    )


def ant_enc_key_call(endpoints: Endpoints, *, user_id: str) -> Call[Secret]:
    """POST customer/getAPIEncpkey {"userId"} → the per-login encryption key."""

    def parse(call: Call[Any], raw: Raw) -> Secret:
        data = _decode_json(call, raw)
        if not isinstance(data, Mapping):
            raise _unusable(call, raw, "unexpected answer")
        key = text(data.get("encKey"))
        if not key:
            raise _login_failure(call, data)
        return Secret(key)

    return _login_call(
        "get_enc_key",
        endpoints.ant_api + ANT_API_PREFIX + "customer/getAPIEncpkey",
        {**ANT_HEADERS, "Authorization": ""},
        {"userId": user_id.upper()},
        parse,
    )


def ant_session_call(
    endpoints: Endpoints, *, user_id: str, api_key: Secret, enc_key: Secret
) -> Call[SessionGrant]:
    """POST customer/getUserSID {"userId","userData"} → the session id."""
    user_data = Secret(ant_user_data(user_id, api_key.reveal(), enc_key.reveal()))

    def parse(call: Call[Any], raw: Raw) -> SessionGrant:
        data = _decode_json(call, raw)
        if not isinstance(data, Mapping):
            raise _unusable(call, raw, "unexpected answer")
        session = text(data.get("sessionID"))
        if str(data.get("stat", "")).strip().lower() != "ok" or not session:
            raise _login_failure(call, data)
        return SessionGrant(
            generation=Generation.ANT, client_id=user_id.upper(), token=Secret(session)
        )

    return _login_call(
        "get_user_sid",
        endpoints.ant_api + ANT_API_PREFIX + "customer/getUserSID",
        {**ANT_HEADERS, "Authorization": ""},
        {"userId": user_id.upper(), "userData": user_data.reveal()},
        parse,
    )


__all__ = [
    "IST",
    "AntApi",
    "Api",
    "Call",
    "Endpoints",
    "Kind",
    "OpenApi",
    "OrderStatus",
    "Raw",
    "ant_enc_key_call",
    "ant_session_call",
    "api_for",
    "interpret",
    "oauth_login_url",
    "open_api_session_call",
]
