"""The one table between our vocabulary and each AliceBlue generation's.

Three spellings meet here: the Open API (G3: INTRADAY/LONGTERM/NORMAL, MARKET/LIMIT/SL/SLM,
BUY/SELL), the ANT API (G2: MIS/CNC/NRML, MKT/L/SL/SL-M, B/S in books) and Noren's, used by
the order-update push (`pcode` I/C/M, `prctyp` MKT/LMT/SL-LMT/SL-MKT). Parsing accepts every
spelling seen in any source (PROTOCOL.md), case-insensitively; building sends exactly what
the official SDKs send.

Where PROTOCOL.md marks a form UNCONFIRMED, the choice is a `Dialect` field read from
settings, so going live can flip it without a code change:

* `ALICEBLUE_MCX_QUANTITY` = `lots` (default) | `units`: how the broker counts MCX quantity.
  Our vocabulary always counts *units* (lot size x lots); with `lots` the client divides by
  the instrument's board lot on the way out and multiplies on the way in.
* `ALICEBLUE_G3_CARRY_FORWARD_PRODUCT` = `NORMAL` (default, the documented error table) |
  `NRML` (what OpenAlgo sends): the Open API product for our NRML.
"""

from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass
from typing import Protocol

from trading.brokers.aliceblue.types import (
    Complexity,
    OrderStatus,
    OrderType,
    Product,
    Side,
    Validity,
)

logger = logging.getLogger(__name__)

EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "MCX", "CDS", "BCD", "NCO", "BCO")
# Segments where CNC (delivery) does not exist; pya3 rewrites CNC to NRML for NFO and MCX.
DERIVATIVE_EXCHANGES = frozenset({"NFO", "BFO", "MCX", "CDS", "BCD", "NCO", "BCO"})

# Nest segment codes (profile `exchEnabled`, contract master `Exchange Segment`).
SEGMENT_TO_EXCHANGE = {
    "nse_cm": "NSE",
    "bse_cm": "BSE",
    "nse_fo": "NFO",
    "bse_fo": "BFO",
    "mcx_fo": "MCX",
    "mcx_idx": "MCX",
    "cde_fo": "CDS",
    "bcs_fo": "BCD",
    "nse_com": "NCO",
    "bse_com": "BCO",
}


class McxQuantity(enum.StrEnum):
    LOTS = "lots"
    UNITS = "units"


@dataclass(frozen=True, slots=True)
class Dialect:
    mcx_quantity: McxQuantity = McxQuantity.LOTS
    g3_carry_forward_product: str = "NORMAL"

    @classmethod
    def from_settings(cls) -> Dialect:
        from django.conf import settings

        return cls(
            mcx_quantity=McxQuantity(getattr(settings, "ALICEBLUE_MCX_QUANTITY", "lots")),
            g3_carry_forward_product=getattr(
                settings, "ALICEBLUE_G3_CARRY_FORWARD_PRODUCT", "NORMAL"
            ),
        )


class UnknownInstrument(ValueError):
    """An order needs a quantity conversion for an instrument we do not know."""


class LotTable(Protocol):
    """Board lot (units per lot) of an MCX instrument, by token or trading symbol."""

    def board_lot(self, exchange: str, token: str = "", trading_symbol: str = "") -> int | None:
        """None when the instrument is unknown."""


class NoLots:
    def board_lot(self, exchange: str, token: str = "", trading_symbol: str = "") -> int | None:
        return None


@dataclass
class StaticLots:
    """A LotTable from a dict {(exchange, token or trading symbol): board lot}."""

    lots: dict[tuple[str, str], int]

    def board_lot(self, exchange: str, token: str = "", trading_symbol: str = "") -> int | None:
        if token and (exchange, token) in self.lots:
            return self.lots[(exchange, token)]
        if trading_symbol:
            return self.lots.get((exchange, trading_symbol))
        return None


def quantity_to_wire(
    *,
    exchange: str,
    token: str,
    trading_symbol: str,
    quantity: int,
    dialect: Dialect,
    lots: LotTable,
) -> int:
    """Our units → the broker's quantity field."""
    if exchange != "MCX" or dialect.mcx_quantity == McxQuantity.UNITS:
        return quantity
    board = lots.board_lot(exchange, token, trading_symbol)
    if not board:
        raise UnknownInstrument(f"MCX {trading_symbol or token}: board lot unknown")
    if quantity % board:
        raise ValueError(f"MCX quantity {quantity} is not a whole number of lots of {board}")
    return quantity // board


def quantity_from_wire(
    *,
    exchange: str,
    token: str,
    trading_symbol: str,
    quantity: int,
    dialect: Dialect,
    lots: LotTable,
) -> int:
    """The broker's quantity field → our units (unknown MCX instruments stay as sent)."""
    if exchange != "MCX" or dialect.mcx_quantity == McxQuantity.UNITS or quantity == 0:
        return quantity
    board = lots.board_lot(exchange, token, trading_symbol)
    if not board:
        logger.warning(
            "MCX quantity left in lots: board lot unknown",
            extra={"ctx": {"token": token, "symbol": trading_symbol}},
        )
        return quantity
    return quantity * board


# --- Products ---------------------------------------------------------------------------------
def product_to_g3(product: Product, dialect: Dialect) -> str:
    return {
        Product.MIS: "INTRADAY",
        Product.CNC: "LONGTERM",
        Product.NRML: dialect.g3_carry_forward_product,
    }[product]


def product_to_g2(product: Product, exchange: str) -> str:
    if product == Product.CNC and exchange in DERIVATIVE_EXCHANGES:
        return "NRML"
    return product.value


_PRODUCTS = {
    # Open API
    "INTRADAY": Product.MIS,
    "LONGTERM": Product.CNC,
    "DELIVERY": Product.CNC,
    "NORMAL": Product.NRML,
    # ANT API
    "MIS": Product.MIS,
    "CNC": Product.CNC,
    "NRML": Product.NRML,
    # Noren push (pcode / prd)
    "I": Product.MIS,
    "C": Product.CNC,
    "M": Product.NRML,
}


def parse_product(value: object) -> Product | None:
    if value is None:
        return None
    return _PRODUCTS.get(str(value).strip().upper())


# --- Order types ------------------------------------------------------------------------------
def order_type_to_g3(order_type: OrderType) -> str:
    return order_type.value  # MARKET, LIMIT, SL, SLM ("SL-M" is refused with EC930)


def order_type_to_g2(order_type: OrderType) -> str:
    return {
        OrderType.MARKET: "MKT",
        OrderType.LIMIT: "L",
        OrderType.SL: "SL",
        OrderType.SLM: "SL-M",
    }[order_type]


_ORDER_TYPES = {
    "MARKET": OrderType.MARKET,
    "MKT": OrderType.MARKET,
    "LIMIT": OrderType.LIMIT,
    "L": OrderType.LIMIT,
    "LMT": OrderType.LIMIT,
    "SL": OrderType.SL,
    "SL-L": OrderType.SL,
    "SL-LMT": OrderType.SL,
    "SLL": OrderType.SL,
    "STOPLOSS": OrderType.SL,
    "SLM": OrderType.SLM,
    "SL-M": OrderType.SLM,
    "SL_M": OrderType.SLM,
    "SL-MKT": OrderType.SLM,
}


def parse_order_type(value: object) -> OrderType | None:
    if value is None:
        return None
    return _ORDER_TYPES.get(str(value).strip().upper())


# --- Sides, validity, complexity -----------------------------------------------------------------
def side_to_g3(side: Side) -> str:
    return side.value


def side_to_g2(side: Side) -> str:
    return side.value  # pya3 sends BUY / SELL in orders; books answer B / S


_SIDES = {"B": Side.BUY, "BUY": Side.BUY, "S": Side.SELL, "SELL": Side.SELL}


def parse_side(value: object) -> Side | None:
    if value is None:
        return None
    return _SIDES.get(str(value).strip().upper())


def parse_validity(value: object) -> Validity | None:
    if value is None:
        return None
    text = str(value).strip().upper()
    return Validity(text) if text in ("DAY", "IOC") else None


def complexity_to_g3(complexity: Complexity) -> str:
    return complexity.value  # REGULAR / AMO


def complexity_to_g2(complexity: Complexity) -> str:
    return {Complexity.REGULAR: "regular", Complexity.AMO: "AMO"}.get(complexity, complexity.value)


_COMPLEXITIES = {
    "REGULAR": Complexity.REGULAR,
    "AMO": Complexity.AMO,
    "BO": Complexity.BO,
    "CO": Complexity.CO,
}


def parse_complexity(value: object) -> Complexity | None:
    if value is None:
        return None
    return _COMPLEXITIES.get(str(value).strip().upper())


# --- Statuses ------------------------------------------------------------------------------------
# Keys are normalised: lower case, "_" and "-" as spaces, single spaces.
_STATUSES: dict[str, OrderStatus] = {
    "open": OrderStatus.OPEN,
    "partially filled": OrderStatus.OPEN,
    "trigger pending": OrderStatus.TRIGGER_PENDING,
    "triggerpending": OrderStatus.TRIGGER_PENDING,
    "complete": OrderStatus.COMPLETE,
    "completed": OrderStatus.COMPLETE,
    "filled": OrderStatus.COMPLETE,
    "traded": OrderStatus.COMPLETE,
    "rejected": OrderStatus.REJECTED,
    "cancelled": OrderStatus.CANCELLED,
    "canceled": OrderStatus.CANCELLED,
    "cancelled after market order": OrderStatus.CANCELLED,
    "canceled after market order": OrderStatus.CANCELLED,
    "after market order req received": OrderStatus.AMO_RECEIVED,
    "modify after market order req received": OrderStatus.AMO_RECEIVED,
    "amo req received": OrderStatus.AMO_RECEIVED,
    "amo received": OrderStatus.AMO_RECEIVED,
    "amo": OrderStatus.AMO_RECEIVED,
    "pending": OrderStatus.PENDING,
    "validation pending": OrderStatus.PENDING,
    "put order req received": OrderStatus.PENDING,
    "modify pending": OrderStatus.PENDING,
    "modify validation pending": OrderStatus.PENDING,
    "modify order req received": OrderStatus.PENDING,
    "cancel pending": OrderStatus.PENDING,
    "cancel order req received": OrderStatus.PENDING,
    "open pending": OrderStatus.PENDING,
    "not modified": OrderStatus.PENDING,
}


def normalise_status_text(value: object) -> str:
    text = re.sub(r"[_\-]+", " ", str(value or "").strip().lower())
    return re.sub(r"\s+", " ", text)


def parse_status(value: object) -> OrderStatus:
    status = _STATUSES.get(normalise_status_text(value))
    if status is None:
        if value not in (None, ""):
            logger.warning("unknown order status", extra={"ctx": {"status": str(value)}})
        return OrderStatus.UNKNOWN
    return status


# Noren `reporttype` on push frames → what happened (kept beside the status).
_REPORT_TYPES = {
    "new": "new",
    "newack": "new",
    "pendingnew": "pending",
    "replaced": "modified",
    "modack": "modified",
    "pendingreplace": "pending",
    "fill": "fill",
    "canceled": "cancelled",
    "cancelled": "cancelled",
    "canack": "cancelled",
    "pendingcancel": "pending",
    "rejected": "rejected",
    "modrejected": "modify_rejected",
    "canrejected": "cancel_rejected",
    "trigger": "triggered",
}


def parse_report_type(value: object) -> str:
    key = re.sub(r"[\s_\-]+", "", str(value or "").lower())
    return _REPORT_TYPES.get(key, key)
