"""AliceBlue's wire vocabulary: request parsing, error envelopes and book rows for both
generations (G2 "ANT" REST and G3 "Open API"), and the order-notify `om` frame.

Field names, string-vs-number types, status spellings and EC codes follow
shared/aliceblue/PROTOCOL.md; where it marks something UNCONFIRMED the dialect switches in
`sandbox.options` choose the form.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox import engine as E
from sandbox.contracts import Instrument

# --- G3 error codes (PROTOCOL.md §3.3) -----------------------------------------------------------
EC_TEXT = {
    "EC003": "Something went wrong. Please try again later",
    "EC087": "Session Expired",
    "EC091": "orderComplexity should be REGULAR or AMO",
    "EC092": "product should be INTRADAY, LONGTERM or MTF",
    "EC807": "NORMAL product is not allowed in cash segment",
    "EC837": "Product not allowed",
    "EC865": "Delivery product is not allowed in F&O segment",
    "EC900": "exchange is required",
    "EC901": "exchange should be one of NSE, BSE, MCX, NFO, BFO, CDS, BCD",
    "EC903": "quantity is required",
    "EC904": "quantity should be greater than zero",
    "EC906": "product is required",
    "EC907": "transactionType is required",
    "EC910": "price is required",
    "EC911": "slTriggerPrice is required",
    "EC914": "Request parameter missing",
    "EC916": "No orders found",
    "EC918": "No order history found for this order",
    "EC920": "No positions found",
    "EC922": "No holdings found",
    "EC926": "No trades found",
    "EC929": "transactionType should be BUY or SELL",
    "EC930": "orderType should be LIMIT, MARKET, SL or SLM",
    "EC932": "validity should be DAY or IOC",
    "EC934": "orderType is required",
    "EC941": "instrumentId is required",
    "EC942": "orderComplexity is required",
    "EC944": "validity is required",
    "EC945": "brokerOrderId is required",
    "EC946": "instrumentId should be numeric",
    "EC947": "Invalid instrumentId",
    "EC948": "quantity should not exceed 50000000",
    "EC950": "Invalid price",
    "EC951": "Invalid slTriggerPrice",
    "EC954": "quantity should be a multiple of lot size",
    "EC957": "price should be greater than zero",
    "EC959": "slTriggerPrice should be greater than zero",
    "EC971": "orderTag should not exceed 50 characters",
    "EC972": "algoId should not exceed 12 characters",
    "EC973": "Trigger price should be less than price for BUY order",
    "EC974": "Trigger price should be greater than price for SELL order",
    "EC975": "disclosedQuantity should not exceed quantity",
    "EC981": "Invalid disclosedQuantity",
    "EC993": "Order cannot be modified in its current status",
    "EC994": "Order not found in your order book",
    "EC996": "IOC validity is not allowed for AMO",
    "EC997": "Order not found in order book",
    "EC998": "Order not found in order book",
}

G3_EXCHANGES = ("NSE", "BSE", "MCX", "NFO", "BFO", "CDS", "BCD")
MAX_QUANTITY = 50_000_000


class WireError(Exception):
    """A request the broker refuses: an EC code (G3) or an error text (G2)."""

    def __init__(self, code: str, text: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.text = text or EC_TEXT.get(code, code)


def g3_ok(result: Any) -> dict[str, Any]:
    return {"status": "Ok", "message": "Success", "infoMessage": None, "result": result}


def g3_error(code: str, dialect: dict[str, str], text: str | None = None) -> dict[str, Any]:
    if dialect["g3_error_envelope"] == "status_code":
        return {
            "status": code,
            "message": text or EC_TEXT.get(code, code),
            "infoMessage": None,
            "result": None,
        }
    return {"status": "Not_Ok", "message": code, "infoMessage": None, "result": None}


def g2_error(text: str, dialect: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"stat": dialect["g2_not_ok"], dialect["g2_emsg_key"]: text, **extra}


# --- vocabularies --------------------------------------------------------------------------------
G3_PRODUCTS_IN = {
    "INTRADAY": "MIS",
    "MIS": "MIS",
    "LONGTERM": "CNC",
    "CNC": "CNC",
    "DELIVERY": "CNC",
    "NORMAL": "NRML",
    "NRML": "NRML",
}
UNSUPPORTED_PRODUCTS = ("MTF", "BNPL", "GTT")
G3_ORDER_TYPES = ("LIMIT", "MARKET", "SL", "SLM")
G2_ORDER_TYPES = {"L": "LIMIT", "MKT": "MARKET", "SL": "SL", "SL-M": "SLM"}
G2_ORDER_TYPES_OUT = {v: k for k, v in G2_ORDER_TYPES.items()}
OM_ORDER_TYPES = {"LIMIT": "LMT", "MARKET": "MKT", "SL": "SL-LMT", "SLM": "SL-MKT"}
OM_PRODUCTS = {"MIS": "I", "CNC": "C", "NRML": "M"}


def g3_product(product: str, dialect: dict[str, str]) -> str:
    return {"MIS": "INTRADAY", "CNC": "LONGTERM", "NRML": dialect["normal_product"]}[product]


def g3_status(order: E.Order, dialect: dict[str, str], status: str | None = None) -> str:
    status = status or order.status
    if status == E.TRIGGER_PENDING:
        return dialect["g3_trigger_pending"]
    if status == E.AMO:
        return "AFTER MARKET ORDER REQ RECEIVED"
    return status


def g2_status(order: E.Order, status: str | None = None) -> str:
    status = status or order.status
    if status == E.TRIGGER_PENDING:
        return "trigger pending"
    if status == E.AMO:
        modified = any(h["report"] == "Replaced" for h in order.history)
        return "modify after market order req received" if modified else (
            "after market order req received"
        )  # fmt: skip
    if status == E.CANCELLED and order.complexity == "AMO" and not order.exch_order_id:
        return "cancelled after market order"
    if status == E.PENDING:
        return "validation pending"
    return status.lower()


def om_status(status: str, dialect: dict[str, str]) -> str:
    if status == E.TRIGGER_PENDING:
        return dialect["om_trigger_pending"]
    if status == E.CANCELLED:
        return dialect["om_cancelled"]
    if status == E.AMO:
        return "OPEN"
    return status


# --- parsing helpers -----------------------------------------------------------------------------
def _text(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    if value is None:
        return ""
    return str(value).strip()


def _decimal(value: Any) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise InvalidOperation
    number = Decimal(str(value).strip())
    if not number.is_finite():
        raise InvalidOperation
    return number


def _int(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError
        return int(value)
    number = Decimal(str(value).strip())
    if number != number.to_integral_value():
        raise ValueError
    return int(number)


def units_for(inst: Instrument, qty: int, dialect: dict[str, str]) -> tuple[int, int]:
    """(exchange units, unit factor) for a submitted quantity; raises on a bad lot multiple."""
    if inst.exchange == "MCX":
        if dialect["mcx_quantity"] == "lots":
            return qty * inst.board_lot, inst.board_lot
        if qty % inst.board_lot:
            raise WireError("EC954", f"Quantity should be multiple of lot size {inst.board_lot}")
        return qty, 1
    if qty % inst.lot_size:
        raise WireError("EC954", f"Quantity should be multiple of lot size {inst.lot_size}")
    return qty, 1


def display_qty(order_or_units: E.Order | int, factor: int = 1) -> int:
    if isinstance(order_or_units, E.Order):
        return order_or_units.units // order_or_units.unit_factor
    return order_or_units // factor


@dataclass
class ModifyRequest:
    quantity: int | None
    order_type: str | None
    price: Decimal | None
    trigger: Decimal | None
    validity: str | None


def parse_g3_order(item: Any, eng: E.Engine, dialect: dict[str, str]) -> E.OrderSpec:
    if not isinstance(item, dict):
        raise WireError("EC914")
    exchange = _text(item, "exchange").upper()
    if not exchange:
        raise WireError("EC900")
    if exchange not in G3_EXCHANGES:
        raise WireError("EC901")
    instrument_id = _text(item, "instrumentId")
    if not instrument_id:
        raise WireError("EC941")
    if not instrument_id.isdigit():
        raise WireError("EC946")
    inst = eng.instrument(exchange, instrument_id)
    if inst is None or inst.is_index:
        raise WireError("EC947")
    side = _text(item, "transactionType").upper()
    if not side:
        raise WireError("EC907")
    if side not in ("BUY", "SELL"):
        raise WireError("EC929")
    try:
        qty = _int(item.get("quantity"))
    except (ValueError, ArithmeticError):
        raise WireError("EC904") from None
    if qty is None:
        raise WireError("EC903")
    if qty <= 0:
        raise WireError("EC904")
    if qty > MAX_QUANTITY:
        raise WireError("EC948")
    complexity = _text(item, "orderComplexity").upper()
    if not complexity:
        raise WireError("EC942")
    if complexity not in ("REGULAR", "AMO"):
        raise WireError("EC091")
    product_in = _text(item, "product").upper()
    if not product_in:
        raise WireError("EC906")
    if product_in in UNSUPPORTED_PRODUCTS:
        raise WireError("EC837")
    product = G3_PRODUCTS_IN.get(product_in)
    if product is None:
        raise WireError("EC092")
    _check_product(inst, product, g3=True)
    order_type = _text(item, "orderType").upper()
    if not order_type:
        raise WireError("EC934")
    if order_type not in G3_ORDER_TYPES:
        raise WireError("EC930")
    validity = _text(item, "validity").upper()
    if not validity:
        raise WireError("EC944")
    if validity not in ("DAY", "IOC"):
        raise WireError("EC932")
    if validity == "IOC" and complexity == "AMO":
        raise WireError("EC996")
    price, trigger = _prices(
        order_type, side, item.get("price"), item.get("slTriggerPrice"), codes=True
    )
    disclosed = 0
    try:
        disclosed = _int(item.get("disclosedQuantity")) or 0
    except (ValueError, ArithmeticError):
        raise WireError("EC981") from None
    if disclosed < 0:
        raise WireError("EC981")
    if disclosed > qty:
        raise WireError("EC975")
    tag = _text(item, "orderTag")
    if len(tag) > 50:
        raise WireError("EC971")
    if len(_text(item, "algoId")) > 12:
        raise WireError("EC972")
    units, factor = units_for(inst, qty, dialect)
    return E.OrderSpec(
        instrument=inst, side=side, units=units, unit_factor=factor, product=product,
        order_type=order_type, price=price, trigger=trigger, validity=validity,
        complexity=complexity, tag=tag, disclosed=disclosed, source="API", generation="g3",
    )  # fmt: skip


def _check_product(inst: Instrument, product: str, *, g3: bool) -> None:
    if inst.is_derivative and product == "CNC":
        raise WireError("EC865", "Delivery product is not allowed in F&O segment")
    if not inst.is_derivative and product == "NRML":
        raise WireError("EC807", "NRML product is not allowed in cash segment")


def _prices(
    order_type: str, side: str, raw_price: Any, raw_trigger: Any, *, codes: bool
) -> tuple[Decimal, Decimal]:
    price = trigger = E.ZERO
    if order_type in ("LIMIT", "SL"):
        try:
            value = _decimal(raw_price)
        except (InvalidOperation, ValueError):
            raise WireError("EC950", "Invalid price") from None
        if value is None:
            raise WireError("EC910", "Price is required")
        if value <= 0:
            raise WireError("EC957", "Price should be greater than zero")
        price = value
    if order_type in ("SL", "SLM"):
        try:
            value = _decimal(raw_trigger)
        except (InvalidOperation, ValueError):
            raise WireError("EC951", "Invalid trigger price") from None
        if value is None:
            raise WireError("EC911", "Trigger price is required")
        if value <= 0:
            raise WireError("EC959", "Trigger price should be greater than zero")
        trigger = value
    if order_type == "SL":
        if side == "BUY" and trigger > price:
            raise WireError("EC973", "Trigger price should be less than price for BUY order")
        if side == "SELL" and trigger < price:
            raise WireError("EC974", "Trigger price should be greater than price for SELL order")
    return price, trigger


def parse_g3_modify(item: Any) -> tuple[str, ModifyRequest]:
    if not isinstance(item, dict):
        raise WireError("EC914")
    order_no = _text(item, "brokerOrderId")
    if not order_no:
        raise WireError("EC945")
    try:
        qty = _int(item.get("quantity"))
    except (ValueError, ArithmeticError):
        raise WireError("EC904") from None
    if qty is not None and qty <= 0:
        raise WireError("EC904")
    order_type = _text(item, "orderType").upper() or None
    if order_type is not None and order_type not in G3_ORDER_TYPES:
        raise WireError("EC930")
    validity = _text(item, "validity").upper() or None
    if validity is not None and validity not in ("DAY", "IOC"):
        raise WireError("EC932")
    try:
        price = _decimal(item.get("price"))
    except (InvalidOperation, ValueError):
        raise WireError("EC950") from None
    try:
        trigger = _decimal(item.get("slTriggerPrice"))
    except (InvalidOperation, ValueError):
        raise WireError("EC951") from None
    if price is not None and price < 0:
        raise WireError("EC957")
    if trigger is not None and trigger < 0:
        raise WireError("EC959")
    return order_no, ModifyRequest(qty, order_type, price, trigger, validity)


G2_EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX", "NCO", "BCO")


def parse_g2_order(item: Any, eng: E.Engine, dialect: dict[str, str]) -> E.OrderSpec:
    if not isinstance(item, dict):
        raise WireError("EC914", "Invalid Input")
    complexity = _text(item, "complexty").upper() or "REGULAR"
    if complexity in ("BO", "CO"):
        raise WireError("EC091", f"{complexity} orders are not allowed for this account")
    if complexity not in ("REGULAR", "AMO"):
        raise WireError("EC091", "Invalid complexty")
    exchange = _text(item, "exch").upper()
    if exchange not in G2_EXCHANGES:
        raise WireError("EC901", "Invalid Exchange")
    token = _text(item, "symbol_id")
    inst = eng.instrument(exchange, token) if token else None
    if inst is None and not token and _text(item, "trading_symbol"):
        inst = eng.lookup(exchange, _text(item, "trading_symbol"))
    if inst is None or inst.is_index:
        raise WireError("EC947", "Invalid Symbol")
    side = _text(item, "transtype").upper()
    side = {"B": "BUY", "S": "SELL"}.get(side, side)
    if side not in ("BUY", "SELL"):
        raise WireError("EC929", "Invalid Transaction Type")
    try:
        qty = _int(item.get("qty"))
    except (ValueError, ArithmeticError):
        qty = -1
    if qty is None or qty <= 0:
        raise WireError("EC904", "Invalid Quantity")
    if qty > MAX_QUANTITY:
        raise WireError("EC948", "Invalid Quantity")
    product = _text(item, "pCode").upper()
    if product == "CO":
        raise WireError("EC091", "CO orders are not allowed for this account")
    if product not in ("MIS", "CNC", "NRML"):
        raise WireError("EC092", "Invalid Product Code")
    _check_product(inst, product, g3=False)
    order_type = G2_ORDER_TYPES.get(_text(item, "prctyp").upper())
    if order_type is None:
        raise WireError("EC930", "Invalid Price Type")
    validity = _text(item, "ret").upper() or "DAY"
    if validity not in ("DAY", "IOC"):
        raise WireError("EC932", "Invalid Retention Type")
    if validity == "IOC" and complexity == "AMO":
        raise WireError("EC996", "IOC is not allowed for AMO")
    price, trigger = _prices(
        order_type, side, item.get("price"), item.get("trigPrice"), codes=False
    )
    tag = _text(item, "orderTag")
    if len(tag) > 50:
        raise WireError("EC971", "Order tag should not exceed 50 characters")
    units, factor = units_for(inst, qty, dialect)
    return E.OrderSpec(
        instrument=inst, side=side, units=units, unit_factor=factor, product=product,
        order_type=order_type, price=price, trigger=trigger, validity=validity,
        complexity=complexity, tag=tag, disclosed=0, source="API", generation="g2",
    )  # fmt: skip


def parse_g2_modify(item: Any) -> tuple[str, ModifyRequest]:
    if not isinstance(item, dict):
        raise WireError("EC914", "Invalid Input")
    order_no = _text(item, "nestOrderNumber")
    if not order_no:
        raise WireError("EC945", "Invalid Input : nestOrderNumber")
    try:
        qty = _int(item.get("qty"))
    except (ValueError, ArithmeticError):
        raise WireError("EC904", "Invalid Quantity") from None
    if qty is not None and qty <= 0:
        raise WireError("EC904", "Invalid Quantity")
    raw_type = _text(item, "prctyp").upper()
    order_type = G2_ORDER_TYPES.get(raw_type) if raw_type else None
    if raw_type and order_type is None:
        raise WireError("EC930", "Invalid Price Type")
    try:
        price = _decimal(item.get("price"))
        trigger = _decimal(item.get("trigPrice"))
    except (InvalidOperation, ValueError):
        raise WireError("EC950", "Invalid Price") from None
    if trigger is not None and trigger == 0 and order_type not in ("SL", "SLM"):
        trigger = None
    return order_no, ModifyRequest(qty, order_type, price, trigger, None)


# --- formatting -----------------------------------------------------------------------------------
def p2(value: Decimal) -> str:
    return f"{value:.2f}"


def comma(value: Decimal) -> str:
    return f"{value:,.2f}"


def num(value: Decimal) -> float:
    return float(value)


def t_g3(dt: datetime) -> str:
    return dt.strftime("%d-%b-%Y %H:%M:%S")


def t_iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def _history_time(order: E.Order, index: int) -> datetime:
    return datetime.fromisoformat(order.history[index]["at"])


def _exch_time(order: E.Order) -> datetime:
    for record in order.history:
        if record["status"] != E.PENDING:
            return datetime.fromisoformat(record["at"])
    return order.placed_at


def g3_order_row(
    order: E.Order, inst: Instrument, dialect: dict[str, str], record: dict[str, Any] | None = None
) -> dict[str, Any]:
    rec = record or {
        "status": order.status,
        "units": order.units,
        "filled_units": order.filled_units,
        "avg_price": str(order.avg_price),
        "price": str(order.price),
        "trigger": str(order.trigger),
        "order_type": order.order_type,
        "reason": order.reason,
        "at": order.updated_at.isoformat(),
    }
    status = rec["status"]
    units, filled = rec["units"], rec["filled_units"]
    live = status in E.LIVE or status == E.PENDING
    cancelled = units - filled if status == E.CANCELLED else 0
    pending = units - filled if live else 0
    updated = datetime.fromisoformat(rec["at"])
    f = order.unit_factor
    return {
        "clientId": order.client_id,
        "placedBy": order.client_id,
        "brokerOrderId": order.order_no,
        "exchange": order.exchange,
        "exchangeOrderId": order.exch_order_id,
        "formattedInstrumentName": inst.formatted_name,
        "tradingSymbol": order.trading_symbol,
        "instrumentId": order.token,
        "transactionType": order.side,
        "quantity": units // f,
        "product": g3_product(order.product, dialect),
        "orderComplexity": order.complexity,
        "orderType": rec["order_type"],
        "price": num(Decimal(rec["price"])),
        "averageTradedPrice": num(Decimal(rec["avg_price"])),
        "slTriggerPrice": num(Decimal(rec["trigger"])),
        "validity": order.validity,
        "disclosedQuantity": order.disclosed,
        "orderTime": t_g3(order.placed_at),
        "exchangeUpdateTime": t_g3(updated),
        "rejectionReason": rec["reason"] if status == E.REJECTED else "",
        "mainLegOrderId": "",
        "cancelledQuantity": cancelled // f,
        "pendingQuantity": pending // f,
        "filledQuantity": filled // f,
        "appKey": "",
        "algoId": "",
        "source": order.source,
        "orderTag": order.tag,
        "trailingSlAmount": 0,
        "brokerUpdateTime": t_g3(updated),
        "marketProtectionPercent": "",
        "exchangeTimestamp": t_g3(updated),
        "orderStatus": g3_status(order, dialect, status),
    }


def g3_history_rows(order: E.Order, inst: Instrument, dialect: dict[str, str]) -> list[dict]:
    """One record per state transition, newest first (AliceBlue's are not chronological)."""
    rows = [g3_order_row(order, inst, dialect, rec) for rec in order.history]
    return list(reversed(rows))


def g3_trade_row(trade: E.Trade, inst: Instrument, dialect: dict[str, str]) -> dict[str, Any]:
    return {
        "clientId": trade.client_id,
        "placedBy": trade.client_id,
        "brokerOrderId": trade.order_no,
        "exchangeOrderId": trade.exch_order_id,
        "exchangeTradeId": trade.exch_trade_id,
        "formattedInstrumentName": inst.formatted_name,
        "tradingSymbol": trade.trading_symbol,
        "instrumentId": trade.token,
        "exchange": trade.exchange,
        "transactionType": trade.side,
        "product": g3_product(trade.product, dialect),
        "orderComplexity": trade.complexity,
        "orderType": trade.order_type,
        "validity": trade.validity,
        "tradedPrice": num(trade.price),
        "filledQuantity": trade.units // trade.unit_factor,
        "orderTime": t_iso(trade.placed_at),
        "fillTimestamp": t_iso(trade.at),
        "orderTag": trade.tag or "--",
        "algoId": "",
    }


def position_factor(pos: E.Position, dialect: dict[str, str]) -> int:
    if pos.exchange == "MCX" and dialect["mcx_quantity"] == "lots":
        return pos.instrument.board_lot
    return 1


def g3_position_row(pos: E.Position, dialect: dict[str, str], close: Decimal) -> dict[str, Any]:
    f = position_factor(pos, dialect)
    inst = pos.instrument
    day_buy = (pos.day_buy_value / pos.day_buy_units) if pos.day_buy_units else E.ZERO
    day_sell = (pos.day_sell_value / pos.day_sell_units) if pos.day_sell_units else E.ZERO
    overnight = (
        (pos.cf_buy_value / pos.cf_buy_units) if pos.overnight_units > 0 and pos.cf_buy_units
        else (pos.cf_sell_value / pos.cf_sell_units) if pos.overnight_units < 0 else E.ZERO
    )  # fmt: skip
    return {
        "instrumentId": pos.token,
        "tradingSymbol": pos.trading_symbol,
        "formattedInstrumentName": inst.formatted_name,
        "exchange": pos.exchange,
        "product": g3_product(pos.product, dialect),
        "netQuantity": pos.net_units // f,
        "netAveragePrice": num(pos.net_avg),
        "overnightQuantity": pos.overnight_units // f,
        "overnightPrice": num(overnight.quantize(E.CENT)),
        "buyQuantity": pos.buy_units // f,
        "sellQuantity": pos.sell_units // f,
        "dayBuyQuantity": pos.day_buy_units // f,
        "daySellQuantity": pos.day_sell_units // f,
        "dayBuyPrice": num(day_buy.quantize(E.CENT)),
        "daySellPrice": num(day_sell.quantize(E.CENT)),
        "multiplier": 1,
        "lotsize": inst.lot_size,
        "ticksize": num(inst.tick_size),
        "previousDayClose": num(close),
        "realizedPnl": num(pos.realised),
        "buyPrice": num(pos.buy_avg),
        "sellPrice": num(pos.sell_avg),
        "dayBuyValue": num(pos.day_buy_value.quantize(E.CENT)),
        "daySellValue": num(pos.day_sell_value.quantize(E.CENT)),
        "validity": "",
    }


def g2_order_row(order: E.Order, inst: Instrument) -> dict[str, Any]:
    f = order.unit_factor
    exch_time = _exch_time(order)
    cancelled = order.units - order.filled_units if order.status == E.CANCELLED else 0
    return {
        "Nstordno": order.order_no,
        "Exchange": order.exchange,
        "Trsym": order.trading_symbol,
        "Sym": inst.symbol,
        "token": order.token,
        "Trantype": order.side[0],
        "Qty": order.units // f,
        "Prc": p2(order.price),
        "Trgprc": p2(order.trigger),
        "Prctype": G2_ORDER_TYPES_OUT[order.order_type],
        "Pcode": order.product,
        "Status": g2_status(order),
        "Fillshares": order.filled_units // f,
        "Unfilledsize": (order.units - order.filled_units) // f,
        "Cancelqty": cancelled // f,
        "Avgprc": p2(order.avg_price) if order.filled_units else "00.00",
        "RejReason": order.reason or "--",
        "ExchOrdID": order.exch_order_id or "NA",
        "ExchConfrmtime": exch_time.strftime("%d-%b-%Y %H:%M:%S") if order.exch_order_id else "--",
        "OrderedTime": order.placed_at.strftime("%d/%m/%Y %H:%M:%S"),
        "orderentrytime": order.placed_at.strftime("%b %d %Y %H:%M:%S"),
        "iSinceBOE": int(order.placed_at.timestamp()),
        "Validity": order.validity,
        "Dscqty": order.disclosed,
        "remarks": order.tag or "--",
        "RequestID": str(len(order.history)),
        "accountId": order.client_id,
        "user": order.client_id,
        "multiplier": "1",
        "Exseg": inst.segment,
        "ordersource": order.source,
        "reporttype": order.history[-1]["report"].lower() if order.history else "NA",
        "ticksize": str(inst.tick_size),
        "Scripname": inst.name,
        "decprec": "2",
        "ordergenerationtype": "--",
        "ExpDate": inst.expiry.strftime("%d %b %Y").upper() if inst.expiry else "--",
        "stat": "Ok",
    }


def g2_history_rows(order: E.Order, inst: Instrument) -> list[dict[str, Any]]:
    rows = []
    f = order.unit_factor
    for rec in reversed(order.history):
        at = datetime.fromisoformat(rec["at"])
        rows.append(
            {
                "nestordernumber": order.order_no,
                "Status": g2_status(order, rec["status"]),
                "Trsym": order.trading_symbol,
                "exchange": order.exchange,
                "Action": order.side[0],
                "Qty": rec["units"] // f,
                "Prc": p2(Decimal(rec["price"])),
                "productcode": order.product,
                "triggerprice": p2(Decimal(rec["trigger"])),
                "filledShares": rec["filled_units"] // f,
                "unfilledSize": (rec["units"] - rec["filled_units"]) // f,
                "averageprice": p2(Decimal(rec["avg_price"])),
                "rejectionreason": rec["reason"] or "--",
                "ExchTimeStamp": at.strftime("%d/%m/%Y %H:%M:%S"),
                "exchangetimestamp": at.strftime("%b %d %Y %H:%M:%S"),
                "exchangeorderid": order.exch_order_id or "NA",
                "Ordtype": G2_ORDER_TYPES_OUT[rec["order_type"]],
                "reporttype": rec["report"].lower(),
                "filldateandtime": at.strftime("%d-%b-%Y %H:%M:%S"),
                "duration": order.validity,
                "nestreqid": "1",
                "stat": "Ok",
            }
        )
    return rows


def g2_trade_row(trade: E.Trade) -> dict[str, Any]:
    f = trade.unit_factor
    return {
        "Nstordno": trade.order_no,
        "Tsym": trade.trading_symbol,
        "Exchange": trade.exchange,
        "Symbol": trade.token,
        "Trantype": trade.side[0],
        "Pcode": trade.product,
        "Prctype": G2_ORDER_TYPES_OUT[trade.order_type],
        "Qty": trade.order_units // f,
        "Filledqty": trade.cum_units // f,
        "Fillqty": trade.units // f,
        "Price": p2(trade.price),
        "AvgPrice": p2(trade.avg_price),
        "FillId": trade.fill_id,
        "ExchordID": trade.exch_order_id,
        "Exchtime": trade.at.strftime("%d-%b-%Y %H:%M:%S"),
        "Filltime": trade.at.strftime("%H:%M:%S"),
        "Filldate": trade.at.strftime("%d-%b-%Y"),
        "Time": trade.at.strftime("%d/%m/%Y %H:%M:%S"),
        "NOReqID": "1",
        "iSinceBOE": int(trade.placed_at.timestamp()),
        "remarks": trade.tag or "--",
        "accountId": trade.client_id,
        "ReportType": "fill",
        "stat": "Ok",
    }


def g2_position_row(pos: E.Position, dialect: dict[str, str], kind: str) -> dict[str, Any]:
    f = position_factor(pos, dialect)
    inst = pos.instrument
    row = {
        "Exchange": pos.exchange,
        "Tsym": pos.trading_symbol,
        "Symbol": inst.symbol,
        "Token": pos.token,
        "Pcode": pos.product,
        "Netqty": str(pos.net_units // f),
        "Bqty": str(pos.buy_units // f),
        "Sqty": str(pos.sell_units // f),
        "Buyavgprc": comma(pos.buy_avg),
        "Sellavgprc": comma(pos.sell_avg),
        "Fillbuyamt": comma(pos.buy_value),
        "Fillsellamt": comma(pos.sell_value),
        "Fillbuyqty": str(pos.buy_units // f),
        "Fillsellqty": str(pos.sell_units // f),
        "LTP": comma(pos.ltp),
        "MtoM": comma(pos.realised + pos.unrealised),
        "BEP": p2(pos.net_avg),
        "Netamt": comma(pos.sell_value - pos.buy_value),
        "realisedprofitloss": comma(pos.realised),
        "unrealisedprofitloss": comma(pos.unrealised),
        "Stikeprc": str(inst.strike) if inst.is_option else "0",
        "Opttype": inst.option_type or "XX",
        "Expdate": inst.expiry.strftime("%d %b %Y").upper() if inst.expiry else "NA",
        "Instname": inst.instrument_type if inst.is_derivative else "NA",
        "Type": "DAY1" if kind == "DAY" else "NET1",
        "actid": "",
        "Exchangeseg": inst.segment,
        "companyname": inst.name,
        "stat": "Ok",
    }
    if kind == "NET":
        row.update(
            {
                "NetBuyavgprc": comma(pos.buy_avg),
                "NetSellavgprc": comma(pos.sell_avg),
                "netbuyqty": str(pos.buy_units // f),
                "netsellqty": str(pos.sell_units // f),
                "CFbuyqty": str(pos.cf_buy_units // f),
                "CFsellqty": str(pos.cf_sell_units // f),
            }
        )
    return row


def om_frame(event: E.Event, dialect: dict[str, str], now: datetime) -> dict[str, Any]:
    order = event.order
    rec = event.record
    f = order.unit_factor
    frame: dict[str, Any] = {
        "t": "om",
        "norenordno": order.order_no,
        "uid": order.client_id,
        "actid": order.client_id,
        "exch": order.exchange,
        "tsym": order.trading_symbol,
        "token": order.token,
        "trantype": order.side[0],
        "qty": str(rec["units"] // f),
        "prc": p2(Decimal(rec["price"])),
        "trgprc": p2(Decimal(rec["trigger"])),
        "prctyp": OM_ORDER_TYPES[rec["order_type"]],
        "pcode": OM_PRODUCTS[order.product],
        "prd": OM_PRODUCTS[order.product],
        "ret": order.validity,
        "dscqty": str(order.disclosed),
        "remarks": order.tag,
        "status": om_status(rec["status"], dialect),
        "reporttype": event.report,
        "fillshares": str(rec["filled_units"] // f),
        "avgprc": p2(Decimal(rec["avg_price"])),
        "cancelqty": str(rec.get("cancelled_units", 0) // f),
        "exchordid": order.exch_order_id,
        "amo": "Yes" if order.complexity == "AMO" else "No",
        "norentm": now.strftime("%H:%M:%S %d-%m-%Y"),
        "exch_tm": now.strftime("%d-%m-%Y %H:%M:%S"),
        "tm": str(int(now.timestamp())),
    }
    if rec["status"] == E.REJECTED:
        frame["rejreason"] = rec["reason"]
    if event.trade is not None:
        trade = event.trade
        frame.update(
            {
                "flqty": str(trade.units // f),
                "flprc": p2(trade.price),
                "fltm": trade.at.strftime("%d-%m-%Y %H:%M:%S"),
                "flid": trade.exch_trade_id,
            }
        )
    return frame


def field_text(body: Any, key: str) -> str:
    """A stripped string field of a JSON object body ('' when absent or not an object)."""
    if not isinstance(body, dict):
        return ""
    return str(body.get(key) or "").strip()
