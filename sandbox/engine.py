"""The sandbox's exchange and RMS: prices, matching, positions, funds and margin.

Plain synchronous code run on the server's event loop (tests call it directly too). Every
state change of an order appends a history record and an event; the server drains the events
to write them through to the state file and push `om` frames.

Rules (the sandbox's, documented in the README):
* MARKET fills at the last traded price; LIMIT fills when the price is at or better than the
  limit (at the last price); SL/SLM wait in TRIGGER_PENDING until the price reaches the
  trigger (BUY: at or above, SELL: at or below), then act as LIMIT/MARKET.
* Partial fills: with `partial_fill_qty` N set, each matching step fills at most N (order
  units); steps run on placement, on every price change of the instrument and on `step()`.
* Quantities are kept in exchange units; MCX orders carry a unit factor (board lot) when
  the dialect counts MCX quantity in lots.
* Margin: equity MIS 20 %, CNC 100 %; index futures 12 %; bought options the premium; sold
  options 12 % of strike value; MCX futures 10 %. Short funds → REJECTED with AliceBlue's RMS
  text ("RED:Margin Shortfall:INR … Available:INR … for C-<id> [ABFSFREEDOM]").
* Outside exchange hours (unless round-the-clock) regular orders are REJECTED and AMO orders
  wait for the open; open DAY orders are cancelled when the market closes or the day ends.
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sandbox.calendar import Calendar
from sandbox.clock import Clock
from sandbox.contracts import Instrument, round_to_tick

OPEN = "OPEN"
TRIGGER_PENDING = "TRIGGER_PENDING"
AMO = "AMO"
COMPLETE = "COMPLETE"
CANCELLED = "CANCELLED"
REJECTED = "REJECTED"
PENDING = "PENDING"
LIVE = (OPEN, TRIGGER_PENDING, AMO)
CENT = Decimal("0.01")
ZERO = Decimal(0)

REASON_MARKET_CLOSED = "RMS:Market is closed for {exchange}. Place an after market order instead"
REASON_TICK = "ORA:Price {price} is not a multiple of tick size {tick} "
REASON_TRIGGER_TICK = "ORA:Trigger price {price} is not a multiple of tick size {tick} "
REASON_FREEZE = "RMS:Quantity {qty} exceeds the freeze quantity {freeze} for {tsym}"
REASON_MARGIN = (
    "RED:Margin Shortfall:INR {short} Available:INR {available} for C-{client} [ABFSFREEDOM]"
)
REASON_DAY_END = "Order cancelled by the exchange at the end of the session"


def money(value: Decimal) -> str:
    """INR with Indian-style thousands separators as AliceBlue's RMS texts show them."""
    return f"{value.quantize(CENT, rounding=ROUND_HALF_UP):,}"


@dataclass
class OrderSpec:
    instrument: Instrument
    side: str  # BUY | SELL
    units: int
    unit_factor: int  # exchange units per submitted quantity (MCX lots → board lot)
    product: str  # MIS | CNC | NRML
    order_type: str  # MARKET | LIMIT | SL | SLM
    price: Decimal
    trigger: Decimal
    validity: str  # DAY | IOC
    complexity: str  # REGULAR | AMO
    tag: str = ""
    disclosed: int = 0
    source: str = "API"
    generation: str = "g3"


@dataclass
class Order:
    order_no: str
    client_id: str
    exchange: str
    token: str
    trading_symbol: str
    side: str
    units: int
    unit_factor: int
    product: str
    order_type: str
    price: Decimal
    trigger: Decimal
    validity: str
    complexity: str
    tag: str
    disclosed: int
    source: str
    generation: str
    status: str
    placed_at: datetime
    updated_at: datetime
    trading_day: date
    exch_order_id: str = ""
    filled_units: int = 0
    avg_price: Decimal = ZERO
    cancelled_units: int = 0
    reason: str = ""
    triggered: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    visible_at: float = 0.0  # time.monotonic() after which books show it (book-delay fault)

    @property
    def pending_units(self) -> int:
        if self.status in LIVE:
            return self.units - self.filled_units
        return 0

    @property
    def is_live(self) -> bool:
        return self.status in LIVE

    def visible(self) -> bool:
        return self.visible_at <= time.monotonic()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("price", "trigger", "avg_price"):
            data[key] = str(data[key])
        for key in ("placed_at", "updated_at"):
            data[key] = data[key].isoformat()
        data["trading_day"] = self.trading_day.isoformat()
        data["visible_at"] = 0.0
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Order:
        data = dict(data)
        for key in ("price", "trigger", "avg_price"):
            data[key] = Decimal(data[key])
        for key in ("placed_at", "updated_at"):
            data[key] = datetime.fromisoformat(data[key])
        data["trading_day"] = date.fromisoformat(data["trading_day"])
        return cls(**data)


@dataclass
class Trade:
    fill_id: str
    order_no: str
    client_id: str
    exchange: str
    token: str
    trading_symbol: str
    side: str
    product: str
    units: int
    price: Decimal
    at: datetime
    trading_day: date
    exch_trade_id: str
    exch_order_id: str
    order_type: str
    validity: str
    complexity: str
    tag: str
    order_units: int
    unit_factor: int
    cum_units: int
    avg_price: Decimal
    placed_at: datetime

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["price"], data["avg_price"] = str(self.price), str(self.avg_price)
        data["at"], data["placed_at"] = self.at.isoformat(), self.placed_at.isoformat()
        data["trading_day"] = self.trading_day.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trade:
        data = dict(data)
        data["price"], data["avg_price"] = Decimal(data["price"]), Decimal(data["avg_price"])
        data["at"] = datetime.fromisoformat(data["at"])
        data["placed_at"] = datetime.fromisoformat(data["placed_at"])
        data["trading_day"] = date.fromisoformat(data["trading_day"])
        return cls(**data)


@dataclass
class Position:
    exchange: str
    token: str
    trading_symbol: str
    product: str
    instrument: Instrument
    day_buy_units: int = 0
    day_buy_value: Decimal = ZERO
    day_sell_units: int = 0
    day_sell_value: Decimal = ZERO
    cf_buy_units: int = 0
    cf_buy_value: Decimal = ZERO
    cf_sell_units: int = 0
    cf_sell_value: Decimal = ZERO
    ltp: Decimal = ZERO

    @property
    def buy_units(self) -> int:
        return self.day_buy_units + self.cf_buy_units

    @property
    def sell_units(self) -> int:
        return self.day_sell_units + self.cf_sell_units

    @property
    def buy_value(self) -> Decimal:
        return self.day_buy_value + self.cf_buy_value

    @property
    def sell_value(self) -> Decimal:
        return self.day_sell_value + self.cf_sell_value

    @property
    def net_units(self) -> int:
        return self.buy_units - self.sell_units

    @property
    def overnight_units(self) -> int:
        return self.cf_buy_units - self.cf_sell_units

    @property
    def buy_avg(self) -> Decimal:
        return (self.buy_value / self.buy_units).quantize(CENT) if self.buy_units else ZERO

    @property
    def sell_avg(self) -> Decimal:
        return (self.sell_value / self.sell_units).quantize(CENT) if self.sell_units else ZERO

    @property
    def net_avg(self) -> Decimal:
        if self.net_units > 0:
            return self.buy_avg
        if self.net_units < 0:
            return self.sell_avg
        return ZERO

    @property
    def realised(self) -> Decimal:
        matched = min(self.buy_units, self.sell_units)
        if not matched:
            return ZERO
        buy = self.buy_value / self.buy_units
        sell = self.sell_value / self.sell_units
        return (matched * (sell - buy)).quantize(CENT)

    @property
    def unrealised(self) -> Decimal:
        if not self.net_units:
            return ZERO
        return (self.net_units * (self.ltp - self.net_avg)).quantize(CENT)


@dataclass
class Funds:
    opening: Decimal
    realised: Decimal
    unrealised: Decimal
    used_margin: Decimal
    available: Decimal


@dataclass
class Event:
    order: Order
    report: str  # New | Replaced | Fill | Canceled | Rejected | Triggered
    trade: Trade | None = None
    record: dict[str, Any] = field(default_factory=dict)  # the order as of this event


AccountTerms = Callable[[str], tuple[Decimal, int]]  # client id -> (opening funds, chunk qty)


class Engine:
    def __init__(
        self,
        instruments: Iterable[Instrument],
        *,
        clock: Clock,
        calendar: Calendar,
        terms: AccountTerms,
        seed: int = 0,
        order_no: Callable[[date], str],
        trade_no: Callable[[], int],
    ) -> None:
        self.clock = clock
        self.calendar = calendar
        self.terms = terms
        self.rng = random.Random(seed)
        self._order_no = order_no
        self._trade_no = trade_no
        self.instruments: dict[tuple[str, str], Instrument] = {}
        self.by_symbol: dict[tuple[str, str], Instrument] = {}
        self.prices: dict[tuple[str, str], Decimal] = {}
        self.close: dict[tuple[str, str], Decimal] = {}
        self.orders: dict[str, Order] = {}
        self.orders_by_client: dict[str, list[Order]] = defaultdict(list)
        self.trades_by_client: dict[str, list[Trade]] = defaultdict(list)
        self.resting: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.events: list[Event] = []
        self.dirty: dict[str, Order] = {}
        self.new_trades: list[Trade] = []
        self.price_changes: set[tuple[str, str]] = set()
        self.load_instruments(instruments)

    # --- reference data, prices ------------------------------------------------------------------
    def load_instruments(self, instruments: Iterable[Instrument]) -> None:
        for inst in instruments:
            key = (inst.exchange, inst.token)
            self.instruments[key] = inst
            self.by_symbol[(inst.exchange, inst.trading_symbol.upper())] = inst
            if inst.exchange in ("NSE", "BSE") and not inst.is_index:
                self.by_symbol.setdefault((inst.exchange, inst.symbol.upper()), inst)
            if inst.is_index:
                self.by_symbol.setdefault((inst.exchange, inst.symbol.upper()), inst)
            self.prices.setdefault(key, inst.base_price)
            self.close.setdefault(key, inst.base_price)

    def instrument(self, exchange: str, token: str) -> Instrument | None:
        return self.instruments.get((exchange, str(token)))

    def lookup(self, exchange: str, symbol_or_token: str | int) -> Instrument | None:
        text = str(symbol_or_token).strip()
        return self.instruments.get((exchange, text)) or self.by_symbol.get(
            (exchange, text.upper())
        )

    def ltp(self, inst: Instrument) -> Decimal:
        return self.prices[(inst.exchange, inst.token)]

    def set_price(self, inst: Instrument, price: Decimal) -> Decimal:
        if not price.is_finite() or price <= 0:
            raise ValueError("a price must be positive")
        key = (inst.exchange, inst.token)
        self.prices[key] = round_to_tick(price, inst.tick_size)
        self.price_changes.add(key)
        self.match(key)
        return self.prices[key]

    def walk(self, sigma: float = 0.0004) -> None:
        """One step of the seeded random walk for every instrument."""
        for key, inst in self.instruments.items():
            price = self.prices[key]
            moved = Decimal(str(float(price) * math.exp(self.rng.gauss(0.0, sigma))))
            new = round_to_tick(moved, inst.tick_size)
            if new != price:
                self.prices[key] = new
                self.price_changes.add(key)
        for key in list(self.resting):
            self.match(key)

    # --- order entry ------------------------------------------------------------------------------
    def place(self, client_id: str, spec: OrderSpec, *, visible_delay: float = 0.0) -> Order:
        inst = spec.instrument
        now = self.clock.now()
        order = Order(
            order_no=self._order_no(now.date()),
            client_id=client_id,
            exchange=inst.exchange,
            token=inst.token,
            trading_symbol=inst.trading_symbol,
            side=spec.side,
            units=spec.units,
            unit_factor=spec.unit_factor,
            product=spec.product,
            order_type=spec.order_type,
            price=spec.price,
            trigger=spec.trigger,
            validity=spec.validity,
            complexity=spec.complexity,
            tag=spec.tag,
            disclosed=spec.disclosed,
            source=spec.source,
            generation=spec.generation,
            status=PENDING,
            placed_at=now,
            updated_at=now,
            trading_day=now.date(),
            visible_at=time.monotonic() + visible_delay if visible_delay else 0.0,
        )
        self.orders[order.order_no] = order
        self.orders_by_client[client_id].append(order)
        self._record(order, "PendingNew")
        reason = self._entry_check(order, inst, now)
        if reason:
            self._reject(order, reason)
            return order
        order.exch_order_id = "1" + order.order_no[-15:].rjust(15, "0")
        if spec.complexity == "AMO" and not self.calendar.is_open(inst.exchange, now):
            self._set(order, AMO, "New")
            return order
        self._release(order)
        return order

    def _release(self, order: Order) -> None:
        if order.order_type in ("SL", "SLM"):
            self._set(order, TRIGGER_PENDING, "New")
        else:
            self._set(order, OPEN, "New")
        self.resting[(order.exchange, order.token)].add(order.order_no)
        self._process(order)

    def _entry_check(self, order: Order, inst: Instrument, now: datetime) -> str:
        if order.complexity != "AMO" and not self.calendar.is_open(inst.exchange, now):
            return REASON_MARKET_CLOSED.format(exchange=inst.exchange)
        if order.order_type in ("LIMIT", "SL") and order.price % inst.tick_size:
            return REASON_TICK.format(price=order.price, tick=inst.tick_size)
        if order.order_type in ("SL", "SLM") and order.trigger % inst.tick_size:
            return REASON_TRIGGER_TICK.format(price=order.trigger, tick=inst.tick_size)
        if inst.freeze_qty:
            freeze_units = inst.freeze_qty * (inst.board_lot if inst.exchange == "MCX" else 1)
            if order.units > freeze_units:
                return REASON_FREEZE.format(
                    qty=order.units // order.unit_factor,
                    freeze=freeze_units // order.unit_factor,
                    tsym=inst.trading_symbol,
                )
        required = self._order_margin(order, order.units)
        if required > 0:
            available = self.funds(order.client_id, exclude=order.order_no).available
            if required > available:
                return REASON_MARGIN.format(
                    short=money(required - available),
                    available=money(available),
                    client=order.client_id,
                )
        return ""

    def modify(
        self,
        order: Order,
        *,
        units: int | None = None,
        order_type: str | None = None,
        price: Decimal | None = None,
        trigger: Decimal | None = None,
        validity: str | None = None,
    ) -> str:
        """Apply a modification; returns an error text (nothing changed) or ''."""
        if not order.is_live:
            return "order is not open"
        inst = self.instruments[(order.exchange, order.token)]
        new_units = order.units if units is None else units
        new_type = order_type or order.order_type
        new_price = order.price if price is None else price
        new_trigger = order.trigger if trigger is None else trigger
        if new_units <= order.filled_units:
            return "quantity must exceed the filled quantity"
        if new_type in ("LIMIT", "SL") and (new_price <= 0 or new_price % inst.tick_size):
            return REASON_TICK.format(price=new_price, tick=inst.tick_size)
        if new_type in ("SL", "SLM") and (new_trigger <= 0 or new_trigger % inst.tick_size):
            return REASON_TRIGGER_TICK.format(price=new_trigger, tick=inst.tick_size)
        if new_type in ("MARKET", "SLM"):
            new_price = ZERO
        if new_type in ("MARKET", "LIMIT"):
            new_trigger = ZERO
        order.units, order.order_type = new_units, new_type
        order.price, order.trigger = new_price, new_trigger
        if validity:
            order.validity = validity
        if order.status == AMO:
            self._set(order, AMO, "Replaced")
            return ""
        pending = new_type in ("SL", "SLM") and not order.triggered
        status = TRIGGER_PENDING if pending else OPEN
        self._set(order, status, "Replaced")
        self._process(order)
        return ""

    def cancel(self, order: Order, reason: str = "") -> bool:
        if not order.is_live:
            return False
        order.cancelled_units = order.units - order.filled_units
        order.reason = reason
        self._set(order, CANCELLED, "Canceled")
        self.resting[(order.exchange, order.token)].discard(order.order_no)
        return True

    # --- matching ---------------------------------------------------------------------------------
    def match(self, key: tuple[str, str]) -> None:
        for order_no in sorted(self.resting.get(key, ())):
            self._process(self.orders[order_no])

    def step(self) -> None:
        """One matching pass over every resting order (continues partial fills)."""
        for key in list(self.resting):
            self.match(key)

    def _process(self, order: Order) -> None:
        key = (order.exchange, order.token)
        ltp = self.prices[key]
        if order.status == TRIGGER_PENDING:
            hit = ltp >= order.trigger if order.side == "BUY" else ltp <= order.trigger
            if not hit:
                return
            order.triggered = True
            self._set(order, OPEN, "Triggered")
        if order.status != OPEN:
            return
        if order.order_type in ("LIMIT", "SL"):
            marketable = ltp <= order.price if order.side == "BUY" else ltp >= order.price
        else:
            marketable = True
        if not marketable:
            if order.validity == "IOC":
                self.cancel(order)
            return
        remaining = order.units - order.filled_units
        _, chunk = self.terms(order.client_id)
        qty = min(remaining, chunk * order.unit_factor) if chunk else remaining
        self._fill(order, qty, ltp)
        if order.status == OPEN and order.validity == "IOC":
            self.cancel(order)

    def _fill(self, order: Order, units: int, price: Decimal) -> None:
        now = self.clock.now()
        total = order.avg_price * order.filled_units + price * units
        order.filled_units += units
        order.avg_price = (total / order.filled_units).quantize(CENT, rounding=ROUND_HALF_UP)
        number = self._trade_no()
        trade = Trade(
            fill_id=str(number),
            order_no=order.order_no,
            client_id=order.client_id,
            exchange=order.exchange,
            token=order.token,
            trading_symbol=order.trading_symbol,
            side=order.side,
            product=order.product,
            units=units,
            price=price,
            at=now,
            trading_day=now.date(),
            exch_trade_id=str(200000000 + number),
            exch_order_id=order.exch_order_id,
            order_type=order.order_type,
            validity=order.validity,
            complexity=order.complexity,
            tag=order.tag,
            order_units=order.units,
            unit_factor=order.unit_factor,
            cum_units=order.filled_units,
            avg_price=order.avg_price,
            placed_at=order.placed_at,
        )
        self.trades_by_client[order.client_id].append(trade)
        self.new_trades.append(trade)
        done = order.filled_units >= order.units
        if done:
            self.resting[(order.exchange, order.token)].discard(order.order_no)
        self._set(order, COMPLETE if done else OPEN, "Fill", trade)

    def _reject(self, order: Order, reason: str) -> None:
        order.reason = reason
        self._set(order, REJECTED, "Rejected")

    def _set(self, order: Order, status: str, report: str, trade: Trade | None = None) -> None:
        order.status = status
        order.updated_at = self.clock.now()
        self._record(order, report)
        self.events.append(Event(order, report, trade, order.history[-1]))

    def _record(self, order: Order, report: str) -> None:
        order.history.append(
            {
                "status": order.status,
                "report": report,
                "at": self.clock.now().isoformat(),
                "units": order.units,
                "filled_units": order.filled_units,
                "avg_price": str(order.avg_price),
                "price": str(order.price),
                "trigger": str(order.trigger),
                "order_type": order.order_type,
                "reason": order.reason,
                "cancelled_units": order.cancelled_units,
            }
        )
        self.dirty[order.order_no] = order

    # --- time -------------------------------------------------------------------------------------
    def housekeeping(self) -> None:
        """End-of-session cancels, day rollover and AMO release (called every tick)."""
        now = self.clock.now()
        today = now.date()
        for order in list(self.orders.values()):
            if not order.is_live:
                continue
            is_open = self.calendar.is_open(order.exchange, now)
            if order.status == AMO:
                if is_open:
                    order.trading_day = today
                    self._release(order)
                continue
            if order.trading_day < today or not is_open:
                self.cancel(order, REASON_DAY_END)

    # --- positions, funds -------------------------------------------------------------------------
    def positions(self, client_id: str) -> list[Position]:
        today = self.clock.today()
        book: dict[tuple[str, str, str], Position] = {}
        for trade in self.trades_by_client.get(client_id, ()):
            key = (trade.exchange, trade.token, trade.product)
            pos = book.get(key)
            if pos is None:
                inst = self.instruments.get((trade.exchange, trade.token))
                if inst is None:
                    continue
                pos = book[key] = Position(
                    trade.exchange, trade.token, trade.trading_symbol, trade.product, inst
                )
            value = trade.price * trade.units
            carried = trade.trading_day < today
            if trade.side == "BUY":
                if carried:
                    pos.cf_buy_units += trade.units
                    pos.cf_buy_value += value
                else:
                    pos.day_buy_units += trade.units
                    pos.day_buy_value += value
            elif carried:
                pos.cf_sell_units += trade.units
                pos.cf_sell_value += value
            else:
                pos.day_sell_units += trade.units
                pos.day_sell_value += value
        for pos in book.values():
            pos.ltp = self.prices[(pos.exchange, pos.token)]
        return list(book.values())

    def _exposure(self, inst: Instrument, product: str, net_units: int, price: Decimal) -> Decimal:
        if not net_units:
            return ZERO
        units = abs(net_units)
        if inst.is_option:
            if net_units > 0:
                return price * units
            return (inst.strike or ZERO) * units * Decimal("0.12")
        if inst.exchange in ("NSE", "BSE"):
            rate = Decimal(1) if product == "CNC" else Decimal("0.2")
        elif inst.exchange == "MCX":
            rate = Decimal("0.10")
        else:
            rate = Decimal("0.12")
        return price * units * rate

    def _order_margin(self, order: Order, units: int, net: int | None = None) -> Decimal:
        inst = self.instruments[(order.exchange, order.token)]
        if net is None:
            net = 0
            for pos in self.positions(order.client_id):
                if (pos.exchange, pos.token, pos.product) == (
                    order.exchange,
                    order.token,
                    order.product,
                ):
                    net = pos.net_units
        signed = units if order.side == "BUY" else -units
        reducing = (net > 0 > signed) or (net < 0 < signed)
        increase = max(0, units - abs(net)) if reducing else units
        if not increase:
            return ZERO
        price = order.price if order.price > 0 else (order.trigger or self.prices[
            (order.exchange, order.token)
        ])  # fmt: skip
        direction = increase if order.side == "BUY" else -increase
        return self._exposure(inst, order.product, direction, price).quantize(CENT)

    def funds(self, client_id: str, *, exclude: str | None = None) -> Funds:
        opening, _ = self.terms(client_id)
        realised = unrealised = used = ZERO
        nets: dict[tuple[str, str, str], int] = {}
        for pos in self.positions(client_id):
            realised += pos.realised
            unrealised += pos.unrealised
            used += self._exposure(pos.instrument, pos.product, pos.net_units, pos.net_avg)
            nets[(pos.exchange, pos.token, pos.product)] = pos.net_units
        for order in self.orders_by_client.get(client_id, ()):
            if order.is_live and order.order_no != exclude:
                net = nets.get((order.exchange, order.token, order.product), 0)
                used += self._order_margin(order, order.pending_units, net)
        used = used.quantize(CENT)
        return Funds(
            opening=opening,
            realised=realised,
            unrealised=unrealised,
            used_margin=used,
            available=(opening + realised - used).quantize(CENT),
        )

    def order_margin(self, client_id: str, spec: OrderSpec) -> Decimal:
        probe = Order(
            order_no="probe", client_id=client_id, exchange=spec.instrument.exchange,
            token=spec.instrument.token, trading_symbol=spec.instrument.trading_symbol,
            side=spec.side, units=spec.units, unit_factor=spec.unit_factor, product=spec.product,
            order_type=spec.order_type, price=spec.price, trigger=spec.trigger,
            validity=spec.validity, complexity=spec.complexity, tag="", disclosed=0,
            source="API", generation="g3", status=PENDING, placed_at=self.clock.now(),
            updated_at=self.clock.now(), trading_day=self.clock.today(),
        )  # fmt: skip
        return self._order_margin(probe, spec.units)

    # --- persistence ------------------------------------------------------------------------------
    def restore(self, orders: Iterable[dict[str, Any]], trades: Iterable[dict[str, Any]]) -> None:
        for data in orders:
            order = Order.from_dict(data)
            self.orders[order.order_no] = order
            self.orders_by_client[order.client_id].append(order)
            if order.status in (OPEN, TRIGGER_PENDING):
                self.resting[(order.exchange, order.token)].add(order.order_no)
        for client_orders in self.orders_by_client.values():
            client_orders.sort(key=lambda o: o.order_no)
        for data in trades:
            trade = Trade.from_dict(data)
            self.trades_by_client[trade.client_id].append(trade)

    def drain(self) -> tuple[list[Event], list[Order], list[Trade]]:
        events, self.events = self.events, []
        dirty, self.dirty = list(self.dirty.values()), {}
        trades, self.new_trades = self.new_trades, []
        return events, dirty, trades
