"""One typed vocabulary for both AliceBlue API generations (Open API "G3" and ANT "G2").

Everything the rest of the product sees of the broker is one of these frozen dataclasses or
one of the errors in `errors.py`. Money is Decimal, times are aware (IST as AliceBlue sends
them), quantities are integers in *our* unit: shares / contract units, and for MCX the units
of the instrument's lot convention chosen by `settings.ALICEBLUE_MCX_QUANTITY` (see
`mapping.McxQuantity`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from copytrade.lib.secret import Secret


class Generation(enum.StrEnum):
    """Which AliceBlue API an account speaks; follows its login method."""

    OPEN_API = "open"  # G3: OAuth vendor login, a3 host
    ANT = "ant"  # G2: API-key login, ant host


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(enum.StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    SL = "SL"  # stop-loss limit
    SLM = "SLM"  # stop-loss market


class Product(enum.StrEnum):
    MIS = "MIS"
    CNC = "CNC"
    NRML = "NRML"


class Complexity(enum.StrEnum):
    REGULAR = "REGULAR"
    AMO = "AMO"
    BO = "BO"
    CO = "CO"


class Validity(enum.StrEnum):
    DAY = "DAY"
    IOC = "IOC"


class OrderStatus(enum.StrEnum):
    """Normalised order status. `OrderRow.raw_status` keeps the broker's spelling."""

    PENDING = "PENDING"  # received / validation / put-order / modify pending
    OPEN = "OPEN"
    TRIGGER_PENDING = "TRIGGER_PENDING"
    AMO_RECEIVED = "AMO_RECEIVED"  # after-market order accepted, not yet at the exchange
    COMPLETE = "COMPLETE"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"  # a spelling the mapping table does not know (raw kept)

    @property
    def is_terminal(self) -> bool:
        return self in (OrderStatus.COMPLETE, OrderStatus.REJECTED, OrderStatus.CANCELLED)

    @property
    def is_accepted(self) -> bool:
        """The broker took the order (working, waiting for its trigger, or done)."""
        return self in (
            OrderStatus.OPEN,
            OrderStatus.TRIGGER_PENDING,
            OrderStatus.AMO_RECEIVED,
            OrderStatus.COMPLETE,
        )


# --- Requests -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order. `token` is the contract-master token; `trading_symbol` is needed by the
    ANT API (and harmless for the Open API). `tag` is our idempotency handle: it comes back
    in the order book and on push events, so an ambiguous send can be looked up."""

    exchange: str
    token: str
    trading_symbol: str
    side: Side
    quantity: int
    order_type: OrderType
    product: Product
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    validity: Validity = Validity.DAY
    complexity: Complexity = Complexity.REGULAR
    tag: str = ""

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError("quantity must be positive")
        if self.order_type in (OrderType.LIMIT, OrderType.SL) and self.price is None:
            raise ValueError(f"{self.order_type} needs a price")
        if self.order_type in (OrderType.SL, OrderType.SLM) and self.trigger_price is None:
            raise ValueError(f"{self.order_type} needs a trigger price")
        if self.complexity not in (Complexity.REGULAR, Complexity.AMO):
            raise ValueError("only REGULAR and AMO orders are supported")
        if len(self.tag) > 50:
            raise ValueError("tag longer than 50 characters")


@dataclass(frozen=True, slots=True)
class ModifyRequest:
    """A change to a working order. The ANT API needs the order's exchange, symbol, side and
    product too (it re-sends them); the Open API needs only the broker order id."""

    broker_order_id: str
    exchange: str
    token: str
    trading_symbol: str
    side: Side
    product: Product
    quantity: int
    order_type: OrderType
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    validity: Validity = Validity.DAY

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError("quantity must be positive")
        if self.order_type in (OrderType.LIMIT, OrderType.SL) and self.price is None:
            raise ValueError(f"{self.order_type} needs a price")
        if self.order_type in (OrderType.SL, OrderType.SLM) and self.trigger_price is None:
            raise ValueError(f"{self.order_type} needs a trigger price")


# --- Results ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OrderAck:
    """The broker accepted the request (place/modify/cancel) and named the order."""

    broker_order_id: str
    request_time: datetime | None = None
    note: str = ""  # e.g. the ANT API's "after market order req received"


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One order as the order book, order history or a push event reports it."""

    broker_order_id: str
    status: OrderStatus
    raw_status: str
    exchange: str
    token: str
    trading_symbol: str
    side: Side | None
    quantity: int
    filled_quantity: int
    pending_quantity: int
    cancelled_quantity: int
    price: Decimal | None
    trigger_price: Decimal | None
    average_price: Decimal | None
    order_type: OrderType | None
    product: Product | None
    complexity: Complexity | None
    validity: Validity | None
    tag: str
    rejection_reason: str
    order_time: datetime | None
    exchange_time: datetime | None
    exchange_order_id: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill."""

    broker_order_id: str
    trade_id: str
    exchange: str
    token: str
    trading_symbol: str
    side: Side | None
    product: Product | None
    quantity: int  # this fill
    price: Decimal | None  # this fill
    average_price: Decimal | None
    tag: str
    fill_time: datetime | None
    exchange_order_id: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Position:
    exchange: str
    token: str
    trading_symbol: str
    product: Product | None
    net_quantity: int
    buy_quantity: int
    sell_quantity: int
    buy_average: Decimal | None
    sell_average: Decimal | None
    net_average: Decimal | None
    realised_pnl: Decimal | None
    unrealised_pnl: Decimal | None  # None where the API does not report it (Open API)
    ltp: Decimal | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Holding:
    isin: str
    exchange: str
    token: str
    trading_symbol: str
    quantity: int
    sellable_quantity: int
    average_price: Decimal | None
    ltp: Decimal | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Funds:
    available_cash: Decimal | None
    utilised_margin: Decimal | None
    net: Decimal | None
    raw: dict[str, Any] | list[Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Profile:
    client_id: str
    name: str
    exchanges: tuple[str, ...]
    products: tuple[str, ...]
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Quote:
    exchange: str
    token: str
    ltp: Decimal
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """A fresh API session: who it belongs to and the opaque session token (secret)."""

    generation: Generation
    client_id: str
    token: Secret


@dataclass(frozen=True, slots=True)
class AccountSession:
    """What a client needs to act for one account today (from `sessions.session_for`)."""

    client_id: str
    generation: Generation
    token: Secret
    account_id: int | None = None
    trading_day: date | None = None
    # When this session was obtained: expiring it is conditional on it still being the
    # stored one (a reconnect meanwhile must not be clobbered).
    obtained_at: datetime | None = None
