"""The typed outcomes of a broker call that did not succeed.

Callers act on the type, never on message text:

* `SessionExpired` — the stored session no longer works: log in again (connect flow).
* `NeedsDailyLogin` — the account owner has not signed in to AliceBlue today; API logins
  fail until they do. A normal, visible state.
* `RateLimited` — the broker said 429; `BudgetExhausted` (a subclass) — our own persisted
  per-account budget (1,800 non-order requests / 15 min) is used up until `retry_at`.
* `Rejected(code, message)` — the broker refused the request (an EC code or its text).
  `LoginRejected` is the same for a login step (bad key, bad auth code).
* `BrokerUnavailable` — the request provably did not reach the broker (DNS, refused, connect
  timeout) or a non-order call got no usable answer (5xx, HTML, garbage). Safe to retry.
* `AmbiguousOrder` — a place/modify/cancel was written to the wire and no usable answer came
  back (read timeout, reset, 5xx, garbage). The order may exist: look its tag up in the order
  book; never resend blindly.
* `PushNotEnabled` — `createWsToken` answered with an empty body: the account has no
  order-update push; poll instead.

Every message is scrubbed of secrets and carries at most a short excerpt of the body.
"""

from __future__ import annotations

from datetime import datetime

from copytrade.lib.logging import scrub

EXCERPT_CHARS = 200


def excerpt(body: bytes | str | None, limit: int = EXCERPT_CHARS) -> str:
    """A short, secret-scrubbed, single-line excerpt of a response body."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[:limit] + "…"
    return scrub(text)


class BrokerError(Exception):
    """Base of every typed broker outcome. `op` names the call (e.g. "place_order")."""

    def __init__(self, message: str, *, op: str = "", excerpt: str = "") -> None:
        self.op = op
        self.excerpt = scrub(excerpt)
        text = scrub(message)
        if op:
            text = f"{op}: {text}"
        if self.excerpt:
            text = f"{text} [{self.excerpt}]"
        super().__init__(text)
        self.message = scrub(message)


class SessionExpired(BrokerError):
    pass


class NeedsDailyLogin(BrokerError):
    """AliceBlue's own text is kept in `message` (e.g. "User does not login")."""


class RateLimited(BrokerError):
    def __init__(
        self,
        message: str,
        *,
        op: str = "",
        excerpt: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, op=op, excerpt=excerpt)
        self.retry_after = retry_after


class BudgetExhausted(RateLimited):
    """Our persisted per-account budget is used up until `retry_at`."""

    def __init__(self, message: str, *, op: str = "", retry_at: datetime, limit: int) -> None:
        self.retry_at = retry_at
        self.limit = limit
        super().__init__(message, op=op)


class Rejected(BrokerError):
    def __init__(self, code: str, message: str, *, op: str = "", excerpt: str = "") -> None:
        self.code = code
        super().__init__(f"{code} {message}".strip(), op=op, excerpt=excerpt)
        self.message = scrub(message)


class LoginRejected(Rejected):
    pass


class BrokerUnavailable(BrokerError):
    def __init__(
        self,
        message: str,
        *,
        op: str = "",
        excerpt: str = "",
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, op=op, excerpt=excerpt)
        self.status_code = status_code


class AmbiguousOrder(BrokerError):
    """An order request left and no usable answer came back. `tag` is the order's tag (for
    place) and `broker_order_id` the order acted on (for modify/cancel)."""

    def __init__(
        self,
        message: str,
        *,
        op: str = "",
        excerpt: str = "",
        tag: str = "",
        broker_order_id: str = "",
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, op=op, excerpt=excerpt)
        self.tag = tag
        self.broker_order_id = broker_order_id
        self.status_code = status_code


class PushNotEnabled(BrokerError):
    pass
