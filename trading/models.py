"""Trading records: instruments, broker sessions, master orders and their events, copy trades
and their status transitions, the position ledger, request budgets, the copier's heartbeat,
and the append-only audit trail of people's actions.

Money is Decimal, quantities are integers, times are aware. Trading history is PROTECTed.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import BrokerAccount, Follower, Master, User


class Exchange(models.TextChoices):
    NSE = "NSE"
    BSE = "BSE"
    NFO = "NFO"
    BFO = "BFO"
    MCX = "MCX"
    CDS = "CDS"
    BCD = "BCD"


class Side(models.TextChoices):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(models.TextChoices):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    SL = "SL", "Stop-loss limit"
    SLM = "SLM", "Stop-loss market"


class Product(models.TextChoices):
    MIS = "MIS", "MIS (intraday)"
    CNC = "CNC", "CNC (delivery)"
    NRML = "NRML", "NRML (carry forward)"


class Complexity(models.TextChoices):
    REGULAR = "REGULAR"
    AMO = "AMO", "After-market order"
    BO = "BO", "Bracket order"
    CO = "CO", "Cover order"
    GTT = "GTT"
    MTF = "MTF"


class Validity(models.TextChoices):
    DAY = "DAY"
    IOC = "IOC"


def _choices_check(
    field: str, choices: type[models.TextChoices], name: str
) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)


# --- Reference data --------------------------------------------------------------------------
class Instrument(models.Model):
    """One row of AliceBlue's contract master, refreshed daily."""

    exchange = models.CharField(max_length=8, choices=Exchange.choices)
    token = models.CharField(max_length=20)
    trading_symbol = models.CharField(max_length=64)
    symbol = models.CharField(max_length=40, help_text="Underlying symbol, e.g. NIFTY or INFY")
    name = models.CharField(max_length=128, blank=True, default="")
    segment = models.CharField(max_length=16, blank=True, default="")
    instrument_type = models.CharField(max_length=16, blank=True, default="")
    option_type = models.CharField(max_length=4, blank=True, default="")
    strike = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    expiry = models.DateField(null=True, blank=True)
    lot_size = models.PositiveIntegerField(default=1)
    tick_size = models.DecimalField(max_digits=10, decimal_places=4)
    # Exchange freeze quantity per order, in the same unit as order quantity; null = none.
    freeze_quantity = models.PositiveIntegerField(null=True, blank=True)
    board_lot_quantity = models.PositiveIntegerField(default=1)
    refreshed_on = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["exchange", "token"], name="instrument_unique_token"),
        ]
        indexes = [
            # instrument by trading symbol (order events carry it)
            models.Index(fields=["exchange", "trading_symbol"], name="instrument_by_tsym"),
            # allowed-instrument checks and lookups by underlying
            models.Index(fields=["exchange", "symbol"], name="instrument_by_symbol"),
        ]

    def __str__(self) -> str:
        return f"{self.exchange}:{self.trading_symbol}"


# --- Broker sessions and budgets ---------------------------------------------------------------
class SessionState(models.TextChoices):
    READY = "ready", "Ready for today"
    NEEDS_LOGIN = "needs_login", "Needs today's login"
    EXPIRED = "expired", "Expired"
    ERROR = "error", "Error"


class SessionGeneration(models.TextChoices):
    OPEN_API = "open", "Open API"
    ANT = "ant", "ANT API"


class SessionPushState(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    ENABLED = "enabled", "Enabled"
    NOT_ENABLED = "not_enabled", "Push not enabled"


class BrokerSession(models.Model):
    """Today's API session of one AliceBlue account (master or follower)."""

    State = SessionState
    Generation = SessionGeneration
    PushState = SessionPushState

    account = models.OneToOneField(BrokerAccount, on_delete=models.CASCADE, related_name="session")
    state = models.CharField(max_length=16, choices=State.choices, default=State.NEEDS_LOGIN)
    generation = models.CharField(
        max_length=8, choices=Generation.choices, default=Generation.OPEN_API
    )
    session_token_encrypted = models.TextField(blank=True, default="")
    trading_day = models.DateField(null=True, blank=True)
    obtained_at = models.DateTimeField(null=True, blank=True)
    push_state = models.CharField(
        max_length=16, choices=PushState.choices, default=PushState.UNKNOWN
    )
    last_error = models.CharField(max_length=500, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            _choices_check("state", SessionState, "broker_session_state_valid"),
            _choices_check("generation", SessionGeneration, "broker_session_generation_valid"),
            _choices_check("push_state", SessionPushState, "broker_session_push_state_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.state}"


class RequestBudget(models.Model):
    """AliceBlue's non-order request allowance (1,800 per 15 minutes) for one account window.

    Shared by every caller: consume with a conditional UPDATE on (account, window_start).
    """

    account = models.ForeignKey(
        BrokerAccount, on_delete=models.CASCADE, related_name="request_budgets"
    )
    window_start = models.DateTimeField()
    used = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "window_start"], name="request_budget_unique_window"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.window_start:%H:%M} used {self.used}"


# --- Master orders and their events ------------------------------------------------------------
class MasterOrder(models.Model):
    """The latest known state of one master order (or one manual copy request)."""

    master = models.ForeignKey(Master, on_delete=models.PROTECT, related_name="orders")
    broker_order_id = models.CharField(max_length=40)
    manual = models.BooleanField(default=False)
    exchange = models.CharField(max_length=8, choices=Exchange.choices)
    token = models.CharField(max_length=20, blank=True, default="")
    trading_symbol = models.CharField(max_length=64)
    side = models.CharField(max_length=4, choices=Side.choices)
    quantity = models.PositiveIntegerField()
    filled_quantity = models.PositiveIntegerField(default=0)
    order_type = models.CharField(max_length=8, choices=OrderType.choices)
    product = models.CharField(max_length=8, choices=Product.choices)
    complexity = models.CharField(
        max_length=8, choices=Complexity.choices, default=Complexity.REGULAR
    )
    validity = models.CharField(max_length=4, choices=Validity.choices, default=Validity.DAY)
    price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    trigger_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    average_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    broker_status = models.CharField(max_length=40, blank=True, default="")
    # The normalised status (trading.brokers.aliceblue.types.OrderStatus), beside the broker's
    # own spelling in broker_status.
    status = models.CharField(max_length=16, blank=True, default="")
    rejection_reason = models.CharField(max_length=500, blank=True, default="")
    tag = models.CharField(max_length=50, blank=True, default="")
    accepted_at = models.DateTimeField(null=True, blank=True, help_text="Broker time")
    exchange_time = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)
    # Seen in the master's order book when the copier first watched the account that day
    # (start-up baseline): recorded, never copied as an entry (it is stale).
    baseline = models.BooleanField(default=False)
    # Filled quantity already applied to the master's position book (idempotent, like
    # CopyTrade.ledger_quantity).
    position_quantity = models.PositiveIntegerField(default=0)
    # Who asked for a manual copy trade (null for orders seen at the broker).
    requested_by = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="manual_copy_requests",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["master", "broker_order_id"], name="master_order_unique_broker_id"
            ),
            models.CheckConstraint(
                condition=Q(position_quantity__lte=models.F("filled_quantity")),
                name="master_order_position_within_filled",
            ),
        ]
        indexes = [
            # recent master orders on the master dashboard
            models.Index(fields=["master", "-first_seen_at"], name="master_order_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.broker_order_id} {self.side} {self.quantity} {self.trading_symbol}"


class EventKind(models.TextChoices):
    ACCEPTED = "accepted"
    MODIFIED = "modified"
    CANCELLED = "cancelled"
    PARTIALLY_FILLED = "partial_fill", "Partially filled"
    FILLED = "filled"
    REJECTED = "rejected"


class EventSource(models.TextChoices):
    PUSH = "push"
    POLL = "poll"
    MANUAL = "manual"


class MasterOrderEvent(models.Model):
    """One deduplicated change of a master order, from push, poll or a manual request."""

    Kind = EventKind
    Source = EventSource

    master_order = models.ForeignKey(MasterOrder, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Distinguishes repeated events of one kind: cumulative filled quantity for fills, a
    # digest of (quantity, price, trigger) for modifications, "" otherwise.
    dedupe_key = models.CharField(max_length=64, blank=True, default="")
    source = models.CharField(max_length=8, choices=Source.choices)
    broker_time = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    quantity = models.PositiveIntegerField()
    filled_quantity = models.PositiveIntegerField(default=0)
    price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    trigger_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    average_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    broker_status = models.CharField(max_length=40, blank=True, default="")
    raw = models.JSONField(default=dict, blank=True)
    # What the copier decided for the event as a whole (trading.engine.reasons.EventOutcome):
    # "copied", "baseline", "no_followers", "not_copied" ...; the per-follower decisions are
    # the CopyTrade rows.
    outcome = models.CharField(max_length=24, blank=True, default="")
    outcome_note = models.CharField(max_length=300, blank=True, default="")
    # The master's copy mode when the event was decided (mirror | fills).
    copy_mode = models.CharField(max_length=8, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["master_order", "kind", "dedupe_key"], name="master_event_unique"
            ),
            _choices_check("kind", EventKind, "master_event_kind_valid"),
            _choices_check("source", EventSource, "master_event_source_valid"),
        ]
        indexes = [models.Index(fields=["-received_at"], name="master_event_recent")]

    def __str__(self) -> str:
        return f"{self.master_order.broker_order_id} {self.kind} ({self.source})"


# --- Copy trades ---------------------------------------------------------------------------
class CopyTradeStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    SENDING = "SENDING", "Sending"
    SUCCESS = "SUCCESS", "Success"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"
    EXPIRED = "EXPIRED", "Expired"
    UNKNOWN = "UNKNOWN", "Unknown"
    SKIPPED = "SKIPPED", "Skipped"


class CopyTradeAction(models.TextChoices):
    PLACE = "place"
    MODIFY = "modify"
    CANCEL = "cancel"


class CopyTradeIntent(models.TextChoices):
    ENTRY = "entry"
    EXIT = "exit"


class CopyTrade(models.Model):
    """One follower order decided for one leg of one master order event."""

    Status = CopyTradeStatus
    Action = CopyTradeAction
    Intent = CopyTradeIntent

    TERMINAL = frozenset({"SUCCESS", "FAILED", "CANCELLED", "EXPIRED", "UNKNOWN", "SKIPPED"})

    # No separate index on these three foreign keys: the unique (event, follower, leg) and the
    # (follower, -decided_at) / (master, -decided_at) indexes lead with them (fewer indexes
    # to write on the copier's hot path: a row per follower per event).
    event = models.ForeignKey(
        MasterOrderEvent, on_delete=models.PROTECT, related_name="copy_trades", db_index=False
    )
    master = models.ForeignKey(
        Master, on_delete=models.PROTECT, related_name="copy_trades", db_index=False
    )
    follower = models.ForeignKey(
        Follower, on_delete=models.PROTECT, related_name="copy_trades", db_index=False
    )
    leg = models.PositiveSmallIntegerField(default=0)
    action = models.CharField(max_length=8, choices=Action.choices, default=Action.PLACE)
    intent = models.CharField(max_length=8, choices=Intent.choices, default=Intent.ENTRY)
    # The follower order this MODIFY/CANCEL acts on (the PLACE copy trade it changes).
    linked = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="changes"
    )
    manual = models.BooleanField(default=False)
    # The broker order tag that identifies this copy in the follower's order book.
    tag = models.CharField(max_length=50, unique=True)

    exchange = models.CharField(max_length=8, choices=Exchange.choices)
    token = models.CharField(max_length=20, blank=True, default="")
    trading_symbol = models.CharField(max_length=64)
    side = models.CharField(max_length=4, choices=Side.choices)
    order_type = models.CharField(max_length=8, choices=OrderType.choices)
    product = models.CharField(max_length=8, choices=Product.choices)
    complexity = models.CharField(
        max_length=8, choices=Complexity.choices, default=Complexity.REGULAR
    )
    validity = models.CharField(max_length=4, choices=Validity.choices, default=Validity.DAY)
    price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    trigger_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)

    # Sizing inputs and result.
    master_quantity = models.PositiveIntegerField()
    quantity = models.PositiveIntegerField(help_text="Follower quantity for this leg")
    lot_multiplier = models.DecimalField(max_digits=10, decimal_places=4)
    lot_size = models.PositiveIntegerField(default=1)
    sizing_note = models.CharField(max_length=200, blank=True, default="")
    # The entry checks' inputs: the order value checked against max_order_value, the price it
    # used and where that price came from (limit | trigger | ltp | master_avg), and today's
    # P&L the max-daily-loss check saw.
    order_value = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    value_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    value_price_source = models.CharField(max_length=12, blank=True, default="")
    daily_pnl = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # The named check that blocked it (SKIPPED) or the cause of FAILED/EXPIRED/UNKNOWN.
    reason_code = models.CharField(max_length=40, blank=True, default="")
    reason = models.CharField(max_length=500, blank=True, default="")

    # Broker outcome and fill progress.
    broker_order_id = models.CharField(max_length=40, blank=True, default="")
    broker_status = models.CharField(max_length=40, blank=True, default="")
    broker_error_code = models.CharField(max_length=20, blank=True, default="")
    broker_error_message = models.CharField(max_length=500, blank=True, default="")
    filled_quantity = models.PositiveIntegerField(default=0)
    average_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    # Filled quantity already applied to the position ledger (idempotent ledger updates).
    ledger_quantity = models.PositiveIntegerField(default=0)
    slippage = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    exchange_time = models.DateTimeField(null=True, blank=True)
    # The broker order reached a final state (complete, rejected, cancelled): nothing left to
    # track for it in the follower's order feed.
    broker_final = models.BooleanField(default=False)

    # Latency on record: master accepted (broker time) -> received -> decided -> sent -> acked.
    master_accepted_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Sending: which copier run claimed the row (PENDING -> SENDING) and when; how many send
    # attempts were made (a request that provably never left may be retried within the
    # staleness window); not before when the next attempt may start (backoff, waiting exits).
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Bumped on every change the boards show; the board's "version" is a max over this.
    version = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["event", "follower", "leg"], name="copy_trade_unique_event_follower_leg"
            ),
            _choices_check("status", CopyTradeStatus, "copy_trade_status_valid"),
            _choices_check("action", CopyTradeAction, "copy_trade_action_valid"),
            _choices_check("intent", CopyTradeIntent, "copy_trade_intent_valid"),
            _choices_check("side", Side, "copy_trade_side_valid"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="copy_trade_qty_nonneg"),
        ]
        indexes = [
            # the follower board: a follower's trades, newest first
            models.Index(fields=["follower", "-decided_at"], name="copy_trade_follower_recent"),
            # the master's copy list and per-event outcomes
            models.Index(fields=["master", "-decided_at"], name="copy_trade_master_recent"),
            # the copier's work queues: rows waiting to be claimed or reconciled
            models.Index(
                fields=["status"],
                name="copy_trade_open_status",
                condition=Q(status__in=["PENDING", "SENDING"]),
            ),
            # follower order updates matched by broker order id (rows that have one)
            models.Index(
                fields=["broker_order_id"],
                name="copy_trade_broker_order",
                condition=~Q(broker_order_id=""),
            ),
            # the decision's "what is still working for this instrument" (the effective
            # position an exit is sized from)
            models.Index(
                fields=["master", "exchange", "token"],
                name="copy_trade_in_flight",
                condition=Q(
                    status__in=["PENDING", "SENDING", "SUCCESS", "UNKNOWN"], broker_final=False
                ),
            ),
            # follower order tracking: a follower's copies whose broker order is still open
            models.Index(
                fields=["follower"],
                name="copy_trade_tracking_open",
                condition=Q(status__in=["SENDING", "SUCCESS", "UNKNOWN"], broker_final=False),
            ),
            # late exits waiting for a proposal (trading.engine.lifecycle.feedloss)
            models.Index(
                fields=["decided_at"],
                name="copy_trade_late_exit",
                condition=Q(reason_code="late_exit"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tag} {self.side} {self.quantity} {self.trading_symbol} {self.status}"


class CopyTradeTransition(models.Model):
    """Every status change of a copy trade, with its time (append-only)."""

    copy_trade = models.ForeignKey(CopyTrade, on_delete=models.PROTECT, related_name="transitions")
    from_status = models.CharField(max_length=10, blank=True, default="")
    to_status = models.CharField(max_length=10)
    at = models.DateTimeField()
    note = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["copy_trade", "at"], name="transition_by_trade")]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status} at {self.at:%H:%M:%S}"


# --- Follower boards -------------------------------------------------------------------------
class FollowerBoard(models.Model):
    """Per-follower counters behind the live board, maintained by database triggers.

    Triggers on ``trading_copytrade`` (migration 0002) keep this row in step with every
    INSERT, UPDATE and DELETE of a follower's copy trades, inside the same transaction as the
    change, whoever writes it (the copier's conditional UPDATEs, bulk updates, the admin, the
    API). So:

    * ``version`` grows with every committed change: the board's refresh compares it with the
      version the page shows and answers 204 without reading a single trade (one indexed row);
    * the per-status counts are the board's "overall" statistics without a scan: they count
      copied orders, the rows with action = place (a master's modification or cancel adds a
      modify/cancel row that bumps ``version`` but is not another copied order);
    * ``total`` counts every row, modify and cancel rows included (the board pages by it).

    Plain integers, no CHECK constraints: a counter can never make a copy trade write fail.
    ``trading.board.rebuild_boards()`` recomputes every row from the copy trades.
    """

    follower = models.OneToOneField(
        Follower, on_delete=models.CASCADE, primary_key=True, related_name="board"
    )
    version = models.BigIntegerField(default=0)
    total = models.IntegerField(default=0)
    pending = models.IntegerField(default=0)
    sending = models.IntegerField(default=0)
    success = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    cancelled = models.IntegerField(default=0)
    expired = models.IntegerField(default=0)
    unknown = models.IntegerField(default=0)
    skipped = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"board of follower {self.follower_id} v{self.version}"


# --- Position ledger -----------------------------------------------------------------------------
class PositionLedger(models.Model):
    """Fills of copied orders per master x follower x instrument x product.

    The only source for "how much may this follower sell", and what reconciliation compares.
    """

    master = models.ForeignKey(Master, on_delete=models.PROTECT, related_name="ledger")
    follower = models.ForeignKey(Follower, on_delete=models.PROTECT, related_name="ledger")
    exchange = models.CharField(max_length=8, choices=Exchange.choices)
    token = models.CharField(max_length=20)
    trading_symbol = models.CharField(max_length=64)
    product = models.CharField(max_length=8, choices=Product.choices)
    net_quantity = models.IntegerField(default=0)
    buy_quantity = models.PositiveIntegerField(default=0)
    sell_quantity = models.PositiveIntegerField(default=0)
    buy_value = models.DecimalField(max_digits=18, decimal_places=4, default=0)
    sell_value = models.DecimalField(max_digits=18, decimal_places=4, default=0)
    realised_pnl = models.DecimalField(max_digits=18, decimal_places=4, default=0)
    # Cost of the open net position (net_quantity x average open price), for realised P&L.
    open_value = models.DecimalField(max_digits=18, decimal_places=4, default=0)
    # Quantity reserved by exit orders in flight (claimed, sent, not yet filled or final): an
    # exit is claimed only if abs(net_quantity) - exit_reserved covers it (a conditional
    # UPDATE), so two exits, or two copiers, can never sell more than the ledger holds.
    exit_reserved = models.PositiveIntegerField(default=0)
    # Detached positions stay in the follower's account but are no longer tracked.
    detached = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["master", "follower", "exchange", "token", "product"],
                name="ledger_unique_position",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.follower} {self.exchange}:{self.trading_symbol} {self.product} "
            f"{self.net_quantity}"
        )


# --- Copier process ------------------------------------------------------------------------------
class CopierHeartbeat(models.Model):
    """A copier process says it is alive, and what it is connected to."""

    name = models.CharField(max_length=64, unique=True)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()
    state = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} pid {self.pid}"


# --- The master's positions, as the copier classifies entries and exits -----------------------
class PositionBook(models.TextChoices):
    BROKER = "broker", "Master's broker account"
    MANUAL = "manual", "Manual copy trades"


class MasterPosition(models.Model):
    """The master's net position per instrument and product, from its own fills.

    Seeded from the broker's position book when the copier first watches the account on a
    trading day, then moved by each master fill (MasterOrder.position_quantity makes that
    idempotent). Manual copy trades have their own book: they never touch the master's
    account, so a manual BUY then a manual SELL is an entry then an exit.
    """

    Book = PositionBook

    master = models.ForeignKey(Master, on_delete=models.PROTECT, related_name="positions")
    book = models.CharField(max_length=8, choices=PositionBook.choices, default="broker")
    exchange = models.CharField(max_length=8, choices=Exchange.choices)
    token = models.CharField(max_length=20)
    trading_symbol = models.CharField(max_length=64)
    product = models.CharField(max_length=8, choices=Product.choices)
    net_quantity = models.IntegerField(default=0)
    # When the broker's position book last set net_quantity (the day's seed).
    seeded_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["master", "book", "exchange", "token", "product"],
                name="master_position_unique",
            ),
            _choices_check("book", PositionBook, "master_position_book_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.master} {self.exchange}:{self.trading_symbol} {self.net_quantity:+d}"


class MasterFeed(models.Model):
    """How the copier sees one master's order feed (dashboards show it; issue 5's banners).

    ``baseline_day`` is the IST trading day whose start-up baseline was taken (the master's
    positions seeded from the broker and the orders already in the book recorded as
    baseline): the first time the copier watches the account on a day, never again that day.
    """

    master = models.OneToOneField(Master, on_delete=models.CASCADE, related_name="feed")
    baseline_day = models.DateField(null=True, blank=True)
    # connecting | connected | silent | disconnected | push_not_enabled | session_expired |
    # needs_login | stopped (trading.brokers.aliceblue.push.FeedState and "needs_login")
    push_state = models.CharField(max_length=24, blank=True, default="")
    push_changed_at = models.DateTimeField(null=True, blank=True)
    last_poll_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True, default="")
    # The copier process (heartbeat name) watching it.
    copier = models.CharField(max_length=64, blank=True, default="")
    # Feed loss (trading.engine.lifecycle.feedloss): when the copier last lost sight of the
    # master's orders mid-day (null while it sees them), why, and when it last got them back.
    # The FEED_LOST alert is created once per loss with created_at = lost_at; the digest
    # reports it only once it has lasted the configured time.
    lost_at = models.DateTimeField(null=True, blank=True)
    lost_reason = models.CharField(max_length=300, blank=True, default="")
    recovered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"feed of {self.master}: {self.push_state or 'not watched'}"


class DailyPnl(models.Model):
    """Today's profit and loss of one broker account, as the max-daily-loss check reads it.

    Written by the copier from the account's broker position book (realised + unrealised,
    fetched within the request budget every COPIER_PNL_REFRESH_SECONDS while the account
    has a session); see trading.engine.pnl.
    """

    account = models.ForeignKey(BrokerAccount, on_delete=models.CASCADE, related_name="pnl")
    trading_day = models.DateField()
    realised = models.DecimalField(max_digits=18, decimal_places=4, default=0)
    unrealised = models.DecimalField(max_digits=18, decimal_places=4, default=0)
    as_of = models.DateTimeField()
    source = models.CharField(max_length=16, default="positions")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "trading_day"], name="daily_pnl_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.trading_day} {self.realised + self.unrealised}"


# --- Alerts: what a person must be told -----------------------------------------------------
class AlertKind(models.TextChoices):
    UNKNOWN_ORDER = "unknown_order", "A copy's outcome is unknown"
    COPY_FAILED = "copy_failed", "A copy failed"
    EXIT_DELAYED = "exit_delayed", "An exit is waiting"
    NEEDS_LOGIN = "needs_login", "A session needs today's login"
    FEED_LOST = "feed_lost", "The master's order feed was lost"
    DAILY_LOSS = "daily_loss", "A daily-loss limit was reached"
    DRIFT = "drift", "Positions drifted apart"


class Alert(models.Model):
    """Something the master must be told (the copier writes it; notifications send it).

    ``notified_at`` is null until a notification (email digest) has carried it;
    ``resolved_at`` is set when the condition cleared (e.g. an UNKNOWN copy was found).
    """

    Kind = AlertKind

    master = models.ForeignKey(Master, on_delete=models.PROTECT, related_name="alerts")
    follower = models.ForeignKey(
        Follower, on_delete=models.PROTECT, null=True, blank=True, related_name="alerts"
    )
    copy_trade = models.ForeignKey(
        CopyTrade, on_delete=models.PROTECT, null=True, blank=True, related_name="alerts"
    )
    kind = models.CharField(max_length=24, choices=AlertKind.choices)
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)
    # How the notification went (trading.engine.lifecycle.notify): "claim:<digest>" while a
    # digest is sending it, then "email", or why it was not sent ("no_email", "short").
    notified_via = models.CharField(max_length=64, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [_choices_check("kind", AlertKind, "alert_kind_valid")]
        indexes = [
            # a master's recent alerts (dashboard banner)
            models.Index(fields=["master", "-created_at"], name="alert_master_recent"),
            # the notification digest: alerts not yet sent
            models.Index(
                fields=["master"],
                name="alert_not_notified",
                condition=Q(notified_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message[:60]}"


# --- Missed exits proposed after a feed loss -------------------------------------------------
class ExitProposalStatus(models.TextChoices):
    OPEN = "open", "Waiting for the master"
    SENT = "sent", "Sent"
    DISMISSED = "dismissed", "Dismissed"
    NOTHING = "nothing", "Nothing left to exit"


class ExitProposal(models.Model):
    """A master's exit the copier found too late to send by itself (a SKIPPED ``late_exit``
    copy, typically after the master's feed was lost), waiting for the master's decision.

    A separate row rather than a state on the SKIPPED copy: that copy is the copier's
    decision, final and counted on the boards; the proposal is a person's decision about it
    (who, when, send or dismiss), and sending it makes new EXIT copies (``exits``) that take
    the normal path (claimed against the position ledger, never more than it holds). One
    proposal per late copy (the unique one-to-one), so proposing twice proposes nothing new.
    """

    Status = ExitProposalStatus

    master = models.ForeignKey(Master, on_delete=models.PROTECT, related_name="exit_proposals")
    follower = models.ForeignKey(Follower, on_delete=models.PROTECT, related_name="exit_proposals")
    late_copy = models.OneToOneField(
        "CopyTrade", on_delete=models.PROTECT, related_name="exit_proposal"
    )
    status = models.CharField(
        max_length=10, choices=ExitProposalStatus.choices, default=ExitProposalStatus.OPEN
    )
    created_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="exit_decisions"
    )
    # What was sent (the sum of the new exit copies' quantities) and why it was less, if so.
    quantity_sent = models.PositiveIntegerField(default=0)
    note = models.CharField(max_length=300, blank=True, default="")
    exits: models.ManyToManyField[CopyTrade, Any] = models.ManyToManyField(
        "CopyTrade", blank=True, related_name="proposed_by"
    )

    class Meta:
        constraints = [_choices_check("status", ExitProposalStatus, "exit_proposal_status_valid")]
        indexes = [
            # the master dashboard's open proposals
            models.Index(
                fields=["master", "created_at"],
                name="exit_proposal_open",
                condition=Q(status="open"),
            ),
        ]

    def __str__(self) -> str:
        return f"proposal {self.pk} ({self.status}) for {self.late_copy_id}"


# --- Reconciliation: copied positions against the master's -----------------------------------
class DriftStatus(models.TextChoices):
    OPEN = "open", "Drift"
    CLOSING = "closing", "Closing"
    RESOLVED = "resolved", "Resolved"


class PositionDrift(models.Model):
    """One follower position that differs from the master's scaled position (reconciliation,
    trading.engine.lifecycle.reconcile). At most one unresolved row per position, so a drift
    is reported (and alerted) once, updated while it lasts, resolved when it clears.

    Quantities are signed (long > 0). ``expected`` is the master's net position scaled by the
    follower's sizing rules; ``ledger_net`` the copied position; ``broker_net`` what the
    follower's broker account holds (null when not read). ``closed_by_hand`` is the part of
    the copied position the broker no longer holds (the follower closed it itself: never
    re-opened); for MIS/NRML reconciliation has taken it out of the ledger (audited
    ``ledger.closed_outside``) and it is what this drift's passes took out. ``to_close`` is
    what the close policy closes (never more than the ledger and the broker both hold, never
    opening anything)."""

    Status = DriftStatus

    master = models.ForeignKey(Master, on_delete=models.PROTECT, related_name="drifts")
    follower = models.ForeignKey(Follower, on_delete=models.PROTECT, related_name="drifts")
    exchange = models.CharField(max_length=8, choices=Exchange.choices)
    token = models.CharField(max_length=20)
    trading_symbol = models.CharField(max_length=64)
    product = models.CharField(max_length=8, choices=Product.choices)
    master_net = models.IntegerField()
    expected = models.IntegerField()
    ledger_net = models.IntegerField()
    broker_net = models.IntegerField(null=True, blank=True)
    closed_by_hand = models.PositiveIntegerField(default=0)
    to_close = models.PositiveIntegerField(default=0)
    note = models.CharField(max_length=300, blank=True, default="")
    status = models.CharField(max_length=10, choices=DriftStatus.choices, default="open")
    # The close order's event (a reconciliation MasterOrder) when the close policy acted.
    close_event = models.ForeignKey(
        MasterOrderEvent,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="drift_closes",
    )
    alert = models.ForeignKey(
        Alert, on_delete=models.PROTECT, null=True, blank=True, related_name="drifts"
    )
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            _choices_check("status", DriftStatus, "position_drift_status_valid"),
            models.UniqueConstraint(
                fields=["master", "follower", "exchange", "token", "product"],
                condition=Q(resolved_at__isnull=True),
                name="position_drift_one_open",
            ),
        ]
        indexes = [
            # the master dashboard's current drifts
            models.Index(
                fields=["master", "first_seen_at"],
                name="position_drift_open",
                condition=Q(resolved_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.follower} {self.exchange}:{self.trading_symbol} {self.ledger_net:+d} "
            f"vs {self.expected:+d}"
        )


# --- Readiness: who would not receive copies today ----------------------------------------------
class ReadinessSource(models.TextChoices):
    SCHEDULED = "scheduled", "Before market open"
    ON_DEMAND = "on_demand", "On demand"


class ReadinessReason(models.TextChoices):
    """Why a follower would not receive (some) copies today, in the order they are listed."""

    NO_ACCOUNT = "no_account", "No AliceBlue account"
    NEEDS_LOGIN = "needs_login", "Needs today's login"
    PAUSED = "paused", "Paused"
    DAILY_LOSS = "daily_loss", "Daily loss limit reached"
    SHORT_OF_FUNDS = "short_of_funds", "Short of funds"
    PUSH_NOT_ENABLED = "push_not_enabled", "Order push not enabled"
    INSTRUMENT_DATA = "instrument_data", "Instrument data missing"


class ReadinessReport(models.Model):
    """One readiness check of a master's followers (`python manage.py readiness`, or the
    copier before market open): every follower that would not receive copies today, and why
    (`items`). The master dashboard shows the latest."""

    Source = ReadinessSource

    master = models.ForeignKey(Master, on_delete=models.CASCADE, related_name="readiness_reports")
    trading_day = models.DateField()
    source = models.CharField(max_length=16, choices=ReadinessSource.choices)
    created_at = models.DateTimeField(default=timezone.now)
    followers_checked = models.PositiveIntegerField(default=0)
    followers_blocked = models.PositiveIntegerField(default=0)
    #: What could not be checked (e.g. funds, when the request budget was low).
    note = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [
            _choices_check("source", ReadinessSource, "readiness_source_valid"),
            # the copier's check runs once per master and trading day
            models.UniqueConstraint(
                fields=["master", "trading_day"],
                condition=Q(source="scheduled"),
                name="readiness_scheduled_once_a_day",
            ),
        ]
        indexes = [
            # the master dashboard: the latest report
            models.Index(fields=["master", "-created_at"], name="readiness_master_latest"),
        ]

    def __str__(self) -> str:
        if not self.followers_checked:
            return "No active followers to check."
        if not self.followers_blocked:
            return f"All {self.followers_checked} followers are ready to receive copies today."
        return (
            f"{self.followers_blocked} of {self.followers_checked} followers would not receive "
            "(some) copies today."
        )

    @property
    def ready(self) -> bool:
        return self.followers_blocked == 0


class ReadinessItem(models.Model):
    """One reason one follower would not receive (some) copies today."""

    Reason = ReadinessReason

    report = models.ForeignKey(ReadinessReport, on_delete=models.CASCADE, related_name="items")
    follower = models.ForeignKey(Follower, on_delete=models.CASCADE, related_name="readiness_items")
    reason = models.CharField(max_length=24, choices=ReadinessReason.choices)
    detail = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        constraints = [
            _choices_check("reason", ReadinessReason, "readiness_item_reason_valid"),
            models.UniqueConstraint(
                fields=["report", "follower", "reason"], name="readiness_item_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.follower_id}: {self.reason}"


class ReadinessRequest(models.Model):
    """A master's "check now" on the dashboard: the copier runs the readiness check within
    seconds (the web process never calls the broker) and links the report it stored."""

    master = models.ForeignKey(Master, on_delete=models.CASCADE, related_name="readiness_requests")
    requested_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    done_at = models.DateTimeField(null=True, blank=True)
    report = models.ForeignKey(
        ReadinessReport, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            # one waiting request per master (a second click adds nothing)
            models.UniqueConstraint(
                fields=["master"],
                condition=Q(done_at__isnull=True),
                name="readiness_request_one_open",
            ),
        ]

    def __str__(self) -> str:
        return f"readiness request {self.master_id} at {self.requested_at:%H:%M}"


# --- Audit trail of people's actions ------------------------------------------------------------
class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: object) -> int:
        raise PermissionError("audit events are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit events are append-only")


class AuditEvent(models.Model):
    """Append-only: who did what to what, when, with before/after values (secrets masked)."""

    actor = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events"
    )
    actor_repr = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="")
    target_repr = models.CharField(max_length=200, blank=True, default="")
    master = models.ForeignKey(
        Master, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events"
    )
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["-at"], name="audit_recent"),
            models.Index(fields=["master", "-at"], name="audit_by_master"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_repr} {self.action}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None and not self._state.adding:
            raise PermissionError("audit events are append-only")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit events are append-only")
