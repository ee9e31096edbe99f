"""Named reasons: why a copy trade was SKIPPED, EXPIRED, FAILED or UNKNOWN, and what an event
as a whole came to. Codes are stable strings stored in `CopyTrade.reason_code` (dashboards and
tests match on them); messages are what a person reads in `CopyTrade.reason`.

The entry checks run in DESIGN.md's order (`ENTRY_CHECK_ORDER`); the first that fails names
the reason. Exits pass every entry check; only a missing session or a closed market delays
one (`EXIT_WAITING_*`).
"""

from __future__ import annotations

import contextlib
from enum import StrEnum

from copytrade.lib.sizing import EXIT_MESSAGES, SKIP_MESSAGES, ExitReason, SkipReason


class Reason(StrEnum):
    # --- entry checks (SKIPPED), in DESIGN.md's order -------------------------------------------
    FOLLOWER_PAUSED = "follower_paused"
    KILL_SWITCH = "kill_switch"
    NEEDS_LOGIN = "needs_login"
    INSTRUMENT_NOT_ALLOWED = "instrument_not_allowed"
    PRODUCT_NOT_ALLOWED = "product_not_allowed"
    INSTRUMENT_UNKNOWN = "instrument_unknown"
    MAX_QUANTITY = "max_quantity"
    BELOW_ONE_LOT = "below_one_lot"
    MAX_ORDER_VALUE = "max_order_value"
    MAX_DAILY_LOSS = "max_daily_loss"
    UNSUPPORTED_ORDER_TYPE = "unsupported_order_type"
    MARKET_CLOSED = "market_closed"
    NO_BROKER_ACCOUNT = "no_broker_account"
    FILL_CARRIED = "fill_carried"  # copy-fills: this fill adds less than one lot (carried)

    # --- exits (SKIPPED: nothing to exit) -----------------------------------------------------
    FOLLOWER_FLAT = ExitReason.FOLLOWER_FLAT.value
    FOLLOWER_OPPOSITE = ExitReason.FOLLOWER_OPPOSITE.value
    ROUNDS_TO_ZERO = ExitReason.ROUNDS_TO_ZERO.value
    NOTHING_TO_EXIT = "nothing_to_exit"  # at send time: earlier exits already cover the ledger
    LATE_EXIT = "late_exit"  # found after the staleness window: proposed, never sent by itself

    # --- sending ----------------------------------------------------------------------------
    STALE = "stale"  # EXPIRED: not sent within the staleness window
    END_OF_DAY = "end_of_day"  # EXPIRED: still unsent when its exchange closed for the day
    BROKER_REJECTED = "broker_rejected"  # FAILED: the broker refused it (code + text)
    EXCHANGE_REJECTED = "exchange_rejected"  # FAILED: a later REJECTED in the order feed
    BROKER_UNAVAILABLE = "broker_unavailable"  # the request never reached the broker
    NOT_FOUND = "not_found"  # UNKNOWN: ambiguous send, the tag never appeared
    SESSION_EXPIRED = "session_expired"
    INVALID_ORDER = "invalid_order"  # FAILED before sending: the order could not be built
    CANCELLED_BY_USER = "cancelled_by_user"  # CANCELLED: a person cancelled the PENDING copy

    # --- modify and cancel mirroring (issue 5) ---------------------------------------------------
    MASTER_CANCELLED = "master_cancelled"  # CANCELLED: a PENDING copy whose master order went
    BEFORE_SEND = "before_send"  # a MODIFY/CANCEL applied to a copy not sent yet (in the DB)
    NOTHING_TO_MODIFY = "nothing_to_modify"  # no open copy of the master order to change
    NOTHING_TO_CANCEL = "nothing_to_cancel"
    UNCHANGED = "unchanged"  # re-sized, the follower's copy is already what it should be
    ALREADY_FILLED = "already_filled"  # the follower's copy filled: left alone, drift recorded


#: DESIGN.md "Entry checks", in order (`max_quantity` covers the sizing results too).
ENTRY_CHECK_ORDER: tuple[Reason, ...] = (
    Reason.FOLLOWER_PAUSED,
    Reason.KILL_SWITCH,
    Reason.NEEDS_LOGIN,
    Reason.INSTRUMENT_NOT_ALLOWED,
    Reason.PRODUCT_NOT_ALLOWED,
    Reason.INSTRUMENT_UNKNOWN,
    Reason.MAX_QUANTITY,
    Reason.MAX_ORDER_VALUE,
    Reason.MAX_DAILY_LOSS,
    Reason.UNSUPPORTED_ORDER_TYPE,
    Reason.MARKET_CLOSED,
)

MESSAGES: dict[Reason, str] = {
    Reason.FOLLOWER_PAUSED: "The follower is paused: entries are not copied (exits still are).",
    Reason.KILL_SWITCH: "The master's kill switch is on: entries are not copied (exits still are).",
    Reason.NEEDS_LOGIN: "The follower's broker account needs today's login.",
    Reason.INSTRUMENT_NOT_ALLOWED: "{instrument} is not in the follower's allowed instruments.",
    Reason.PRODUCT_NOT_ALLOWED: "Product {product} is not in the follower's allowed products.",
    Reason.INSTRUMENT_UNKNOWN: (
        "{instrument} is not in the contract master; lot and freeze sizes are unknown."
    ),
    Reason.MAX_QUANTITY: SKIP_MESSAGES[SkipReason.MAX_QUANTITY_BELOW_LOT],
    Reason.BELOW_ONE_LOT: SKIP_MESSAGES[SkipReason.BELOW_ONE_LOT],
    Reason.MAX_ORDER_VALUE: (
        "Order value {value} is above the follower's maximum order value {limit}."
    ),
    Reason.MAX_DAILY_LOSS: (
        "Today's P&L {pnl} has reached the follower's maximum daily loss {limit}."
    ),
    Reason.UNSUPPORTED_ORDER_TYPE: (
        "{complexity} orders are not copied (only regular and after-market orders are)."
    ),
    Reason.MARKET_CLOSED: "{exchange} is closed: {detail}",
    Reason.NO_BROKER_ACCOUNT: "The follower has no broker account.",
    Reason.FILL_CARRIED: (
        "This fill adds less than one lot for the follower ({note}); the remainder is carried "
        "to the master's next fill."
    ),
    Reason.FOLLOWER_FLAT: EXIT_MESSAGES[ExitReason.FOLLOWER_FLAT],
    Reason.FOLLOWER_OPPOSITE: EXIT_MESSAGES[ExitReason.FOLLOWER_OPPOSITE],
    Reason.ROUNDS_TO_ZERO: EXIT_MESSAGES[ExitReason.ROUNDS_TO_ZERO],
    Reason.NOTHING_TO_EXIT: (
        "Nothing left to exit: the follower's copied position is already covered by earlier exits."
    ),
    Reason.LATE_EXIT: (
        "The master's exit was found {late} s after it was accepted; late exits are proposed "
        "for review, never sent automatically."
    ),
    Reason.STALE: "Not sent within {seconds} s of the master's acceptance; never sent late.",
    Reason.END_OF_DAY: (
        "Not sent by the end of the trading day ({exchange} closed at {closed}; it was waiting: "
        "{waiting}). Unsent copies expire at the close and are never sent on a later day."
    ),
    Reason.BROKER_REJECTED: "The broker refused the order: {message}",
    Reason.EXCHANGE_REJECTED: "The order was rejected after it was accepted: {message}",
    Reason.BROKER_UNAVAILABLE: "The broker could not be reached: {message}",
    Reason.NOT_FOUND: (
        "The broker did not answer and the order's tag {tag} did not appear in the follower's "
        "order book within {seconds} s. It may or may not exist; it will not be resent."
    ),
    Reason.SESSION_EXPIRED: "The follower's broker session expired: {message}",
    Reason.INVALID_ORDER: "The order could not be built: {message}",
    Reason.CANCELLED_BY_USER: "Cancelled by {user} before it was sent.",
    Reason.MASTER_CANCELLED: (
        "The master cancelled its order before this copy was sent: never sent."
    ),
    Reason.BEFORE_SEND: (
        "The follower's copy {tag} had not been sent yet: {what} before sending, nothing sent."
    ),
    Reason.NOTHING_TO_MODIFY: "No open copy of the master's order to modify ({detail}).",
    Reason.NOTHING_TO_CANCEL: "No open copy of the master's order to cancel ({detail}).",
    Reason.UNCHANGED: "Re-sized, the follower's copy {tag} is already {quantity} at this price.",
    Reason.ALREADY_FILLED: (
        "The follower's copy {tag} had already filled {filled} of {quantity}: left alone; "
        "the master's order {order} ({master_filled} of {master_quantity} filled) was {what}. "
        "The difference is recorded for reconciliation."
    ),
}

#: Exits waiting (PENDING with a reason) rather than skipped.
EXIT_WAITING_LOGIN = "Exit waiting: the follower's broker account needs today's login."
EXIT_WAITING_MARKET = "Exit waiting: {exchange} is closed ({detail})."
EXIT_WAITING_FILLS = "Exit waiting for the follower's entry order to fill."
EXIT_WAITING_RETRY = "Exit will be retried: {message}"


def message(reason: Reason, **values: object) -> str:
    """The person-readable text for a reason, with its values filled in (at most 500 chars)."""
    text = MESSAGES[reason]
    with contextlib.suppress(KeyError, IndexError):
        text = text.format(**values)
    return text[:500]


class EventOutcome(StrEnum):
    """What the copier did with a master order event as a whole (MasterOrderEvent.outcome)."""

    COPIED = "copied"  # copy trades were decided (see the rows, some may be SKIPPED)
    BASELINE = "baseline"  # the order was there before the copier first watched the account
    NO_FOLLOWERS = "no_followers"  # the master has no active followers
    RECORDED = "recorded"  # an event that needs no copy in this mode (e.g. a fill in mirror)
    REJECTED = "rejected"  # the master's order was rejected: never copied
    NOT_ACCEPTED = "not_accepted"  # cancelled before it was ever seen accepted
    LIFECYCLE = "lifecycle"  # modify/cancel: mirrored by the lifecycle engine (issue 5)
