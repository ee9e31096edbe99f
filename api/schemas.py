"""The API's shapes: the seed's field names (camelCase) inside the seed's envelope
`{"ok", "message", "data", "error"}`. Decimals travel as strings (exact money)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

T = TypeVar("T")

NO_NUL = "Text must not contain NUL characters."
PRICE_REQUIRED = "price: a LIMIT or SL order needs a price."
PRICE_NOT_ALLOWED = "price: a MARKET or SLM order takes no price."
TRIGGER_REQUIRED = "triggerPrice: an SL or SLM order needs a trigger price."
TRIGGER_NOT_ALLOWED = "triggerPrice: only SL and SLM orders take a trigger price."


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(NO_NUL)
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


class ErrorInfo(BaseModel):
    code: str = Field(description="machine-readable, e.g. validation_error, not_found")
    fields: dict[str, list[str]] = Field(
        default_factory=dict, description="messages per input field (camelCase names)"
    )


class Envelope(BaseModel, Generic[T]):
    ok: bool
    message: str
    data: T | None = None
    error: ErrorInfo | None = None


class ErrorEnvelope(BaseModel):
    ok: Literal[False] = False
    message: str
    data: None = None
    error: ErrorInfo


# --- Followers ----------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FollowerRegisterIn(_Strict):
    displayName: Text | None = Field(
        default=None, max_length=80, description="defaults to the client id"
    )
    clientId: Text = Field(max_length=32)
    loginMethod: Literal["api_key", "oauth"] = "api_key"
    apiKey: Text = Field(default="", max_length=500, description="input only; stored encrypted")
    appCode: Text = Field(default="", max_length=200, description="own vendor app (optional)")
    apiSecret: Text = Field(default="", max_length=500, description="own vendor app (optional)")
    lotMultiplier: Decimal = Field(allow_inf_nan=False)
    maxQuantity: int
    maxOrderValue: Decimal = Field(allow_inf_nan=False)
    maxDailyLoss: Decimal = Field(allow_inf_nan=False)
    allowedInstruments: list[Text] = Field(
        default_factory=list,
        max_length=500,
        description='e.g. ["NSE:INFY", "NFO:NIFTY"]; empty = all',
    )
    allowedProductTypes: list[Text] = Field(
        default_factory=lambda: ["MIS", "CNC", "NRML"], max_length=10
    )


class FollowerOut(BaseModel):
    followerId: int
    loginUsername: str
    displayName: str
    clientId: str
    loginMethod: str
    apiKeyLast4: str = Field(description="the last four characters, never the key")
    lotMultiplier: Decimal
    maxQuantity: int
    maxOrderValue: Decimal
    maxDailyLoss: Decimal
    allowedInstruments: list[str]
    allowedProductTypes: list[str]
    paused: bool
    active: bool
    createdAt: datetime


class RegisteredFollowerOut(FollowerOut):
    loginPassword: str = Field(description="shown once; only its hash is stored")


# --- Copy trades --------------------------------------------------------------------------------
Status = Literal[
    "PENDING", "SENDING", "SUCCESS", "FAILED", "CANCELLED", "EXPIRED", "UNKNOWN", "SKIPPED"
]


class CopyTradeOut(BaseModel):
    id: int
    masterId: int
    followerId: int
    symbol: str
    exchange: str
    side: str
    masterQty: int
    followerQty: int
    filledQty: int
    price: Decimal | None
    averagePrice: Decimal | None
    orderType: str
    product: str
    status: str
    reason: str
    reasonCode: str
    manual: bool
    leg: int
    brokerOrderId: str
    timestamp: datetime


class ManualCopyIn(_Strict):
    symbol: Text = Field(min_length=1, max_length=64, description="trading symbol, e.g. INFY-EQ")
    exchange: Literal["NSE", "BSE", "NFO", "BFO", "MCX", "CDS", "BCD"]
    side: Literal["BUY", "SELL"]
    quantity: int = Field(ge=1, le=10_000_000)
    orderType: Literal["MARKET", "LIMIT", "SL", "SLM"] = "MARKET"
    price: Decimal | None = Field(
        default=None, allow_inf_nan=False, gt=0, max_digits=14, decimal_places=4
    )
    triggerPrice: Decimal | None = Field(
        default=None, allow_inf_nan=False, gt=0, max_digits=14, decimal_places=4
    )
    product: Literal["MIS", "CNC", "NRML"] = "MIS"

    @model_validator(mode="after")
    def _prices_fit_the_order_type(self) -> ManualCopyIn:
        if self.orderType in ("LIMIT", "SL") and self.price is None:
            raise ValueError(PRICE_REQUIRED)
        if self.orderType in ("MARKET", "SLM") and self.price is not None:
            raise ValueError(PRICE_NOT_ALLOWED)
        if self.orderType in ("SL", "SLM") and self.triggerPrice is None:
            raise ValueError(TRIGGER_REQUIRED)
        if self.orderType in ("MARKET", "LIMIT") and self.triggerPrice is not None:
            raise ValueError(TRIGGER_NOT_ALLOWED)
        return self


class CopyTradeStatusIn(_Strict):
    id: int = Field(ge=1, le=2**63 - 1)
    status: Status = Field(description="only CANCELLED is accepted, for a PENDING copy trade")


class ManualCopyOut(BaseModel):
    masterOrderId: int
    copyTrades: list[CopyTradeOut]
