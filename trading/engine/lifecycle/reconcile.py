"""Reconciliation (issue 5, item 7): each follower's copied positions against the master's.

A periodic copier job (`reconcile_job`, every ``COPIER_RECONCILE_SECONDS``) compares, per
active follower and instrument x product:

* the master's net position (`MasterPosition`, its broker book plus its manual book),
  scaled by the follower's sizing rules (`expected_position`: ``size_entry`` of the whole
  position, whole lots, capped at ``max_quantity``);
* the follower's copied position (`PositionLedger`, detached rows left out);
* what the follower's broker account holds (its position book, one request per account
  within the request budget; unknown when there is no session or no budget).

A difference is a **drift** (`PositionDrift`): stored for the dashboard, alerted once
(``DRIFT``), updated while it lasts and resolved when it clears. Positions with a copy still
working (or changed while the broker's book was being read) are left for the next pass: they
are moving, not drifting.

**Closed outside copytrade.** When the broker's net position on the ledger's side is smaller
than the ledger (or flat, or the other side) and nothing is at work on it, the follower closed
(part of) the copied position itself: the ledger is reduced to what the broker still holds on
that side (`reduced_ledger`; never increased, never its sign changed) by a conditional UPDATE
(the row as read: quantity, no exit reserved, not updated since) when the broker's book has
a row for the position (`_book_shows`: a missing row is reported, never read as closed), with
an audit row
(``ledger.closed_outside``, before/after, reason "closed outside copytrade"), and the drift
reports it (``closed_by_hand``, carried while the drift lasts). A later master exit is sized
from the reduced ledger, so it never sells what the follower no longer holds (it would go
short: an MIS/NRML sell goes through at the broker). Only MIS and NRML: a CNC position bought
on an earlier day is in the holdings, not the position book, so the book cannot tell a hand
close there: reported only (AliceBlue refuses a delivery sell beyond the demat holdings; the
sandbox does not model that). Shares the follower holds beyond the ledger are its own: the
ledger is never increased. No stored broker reading caps an exit at send time: the only one
per position is this pass's (DailyPnl keeps P&L, not quantities), and a stale one would cut
an exit the follower's later copies filled; `ledger.reserve_exit` caps the claim to the
(reduced) ledger.

The master's policy (`Master.reconcile_policy`):

* ``report`` (default): nothing else.
* ``close``: a copied position the master no longer holds (flat, or on the other side) is
  closed — exactly what the follower still holds of it at the broker, never more than the
  ledger holds (the claim checks the ledger again), never anything the follower already
  closed by hand (that part is reported as ``closed_by_hand`` and left alone), and nothing is
  ever opened or re-opened. Without a broker reading nothing is closed (a hand close could not
  be told apart). One close per drift: if it does not clear the drift (a rejection), the drift
  stays reported and is not retried by itself. A position the master still holds but smaller
  or larger than the follower's (rounding, caps, skipped entries, a missed partial exit) is
  reported only: missed exits are proposed for review (`feedloss`), rounding is the rule.

The close is a MARKET exit copy under a manual master order ``RECONCILE-…`` (it records the
decision and never moves the master's books), written with `exits.add_exit_copies` and sent
by the copier on the normal path.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from accounts.models import Follower, Master
from copytrade.lib import clock
from copytrade.lib.sizing import size_entry
from trading.audit import record_audit
from trading.brokers.aliceblue import budget as persisted_budget
from trading.brokers.aliceblue.errors import BrokerError
from trading.brokers.aliceblue.types import Position
from trading.engine import decide, jobs
from trading.engine.alerts import raise_alert
from trading.engine.lifecycle.exits import add_exit_copies, request_order
from trading.models import (
    Alert,
    AlertKind,
    CopyTrade,
    MasterPosition,
    PositionDrift,
    PositionLedger,
    Product,
)

if TYPE_CHECKING:
    from trading.engine.runner import Copier

logger = logging.getLogger("trading.engine.lifecycle")

RECONCILE_PREFIX = "RECONCILE-"
#: Requests kept back for the pollers and sends: below this, the broker's book is not read.
MIN_BUDGET = 20

DRIFT_MESSAGE = (
    "{follower}: {symbol} ({product}) copied {ledger:+d}, expected {expected:+d} for your "
    "{master:+d}{broker}.{hand}"
)
HAND_NOTE = " The follower closed {qty} by hand: never re-opened."
REDUCED_NOTE = (
    " The follower closed {qty} outside copytrade: the ledger no longer counts it (never sold "
    "or re-opened)."
)
#: The audit trail's reason for a ledger reduced to what the broker still holds.
CLOSED_OUTSIDE = "closed outside copytrade"
#: Products whose whole position is in the broker's position book (CNC from an earlier day is
#: in the holdings instead): only these ledgers are reduced to the book.
REDUCIBLE_PRODUCTS = frozenset({Product.MIS.value, Product.NRML.value})
CLOSE_NOTE = "Closing {qty}: you no longer hold it (policy: close)."
CLOSE_DONE_NOTE = "The close did not clear it; it is not retried by itself."
CLOSE_OUTCOME = "Reconciliation closes {follower}'s {qty} {symbol}: the master no longer holds it."


Key = tuple[str, str, str]  # exchange, token, product


# --- Pure ------------------------------------------------------------------------------------
def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def expected_position(
    master_net: int, *, multiplier: Decimal, lot_size: int, max_quantity: int
) -> int:
    """The master's net position scaled by the follower's sizing rules (signed)."""
    if master_net == 0:
        return 0
    sized = size_entry(
        abs(master_net), multiplier, lot_size=max(lot_size, 1), max_quantity=max_quantity
    )
    return _sign(master_net) * sized.quantity


@dataclass(frozen=True)
class Comparison:
    master_net: int
    expected: int
    ledger_net: int
    broker_net: int | None
    closed_by_hand: int
    to_close: int
    #: The ledger was reduced to the broker's position in this pass (closed outside copytrade).
    reduced: bool = False

    @property
    def drift(self) -> bool:
        return self.ledger_net != self.expected or self.closed_by_hand > 0


def compare(
    *, master_net: int, expected: int, ledger_net: int, broker_net: int | None
) -> Comparison:
    """Compare one position (pure). ``to_close`` is what the close policy may close: the
    copied position the master no longer holds, as far as the broker still holds it."""
    held: int | None = None
    closed_by_hand = 0
    if broker_net is not None and ledger_net:
        held = max(broker_net * _sign(ledger_net), 0)
        closed_by_hand = max(abs(ledger_net) - held, 0)
    no_longer_held = ledger_net != 0 and _sign(master_net) != _sign(ledger_net)
    to_close = min(abs(ledger_net), held) if no_longer_held and held is not None else 0
    return Comparison(master_net, expected, ledger_net, broker_net, closed_by_hand, to_close)


def reduced_ledger(ledger_net: int, broker_net: int | None) -> int:
    """What the ledger may still count, given the broker's net position (pure): at most what
    the broker holds on the ledger's side; never more than the ledger, never the other sign."""
    if broker_net is None or ledger_net == 0:
        return ledger_net
    held = max(broker_net * _sign(ledger_net), 0)
    return _sign(ledger_net) * min(abs(ledger_net), held)


# --- What to read from the broker ----------------------------------------------------------
def accounts_to_read() -> list[int]:
    """Broker accounts of active followers with something to compare (a copied position, a
    master position, or an open drift)."""
    masters_holding = set(
        MasterPosition.objects.exclude(net_quantity=0).values_list("master_id", flat=True)
    )
    followers = set(
        PositionLedger.objects.filter(detached=False)
        .exclude(net_quantity=0)
        .values_list("follower_id", flat=True)
    )
    followers |= set(
        PositionDrift.objects.filter(resolved_at__isnull=True).values_list("follower_id", flat=True)
    )
    rows = Follower.objects.filter(
        Q(pk__in=followers) | Q(master_id__in=masters_holding),
        is_active=True,
        deactivating_at__isnull=True,
    ).values_list("user__broker_account__pk", flat=True)
    return sorted({pk for pk in rows if pk is not None})


def budget_left(account_id: int) -> int:
    return persisted_budget.remaining(account_id)


# --- The comparison and its records ------------------------------------------------------------
@dataclass
class Reconciled:
    compared: int = 0
    drifts: list[int] = field(default_factory=list)
    alerted: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    pending_ids: list[int] = field(default_factory=list)
    #: Ledger rows reduced to the broker's position (closed outside copytrade).
    reduced: list[int] = field(default_factory=list)

    def extend(self, other: Reconciled) -> None:
        self.compared += other.compared
        self.reduced += other.reduced
        self.drifts += other.drifts
        self.alerted += other.alerted
        self.resolved += other.resolved
        self.pending_ids += other.pending_ids


def _broker_net(positions: list[Position] | None, key: Key, symbol: str) -> int | None:
    if positions is None:
        return None
    exchange, token, product = key
    total = 0
    for p in positions:
        if p.product is None or p.product.value != product or p.exchange != exchange:
            continue
        if (token and p.token == token) or (not token and p.trading_symbol == symbol):
            total += p.net_quantity
    return total


def _book_shows(positions: list[Position] | None, key: Key, symbol: str) -> bool:
    """The broker's book has a row for this position (a position closed today stays in the
    day's book) and none of this instrument with a product we cannot read: only then is its
    net trusted to take anything out of the ledger (a missing row — an earlier day, a token
    spelt otherwise — is reported, never read as "closed")."""
    if positions is None:
        return False
    exchange, token, product = key
    found = False
    for p in positions:
        if p.exchange != exchange:
            continue
        if not ((token and p.token == token) or p.trading_symbol == symbol):
            continue
        if p.product is None:
            return False
        found = found or (p.product.value == product and (not token or p.token == token))
    return found


Moving = set[tuple[int, Key]]  # (follower id, position) with a copy at work


def moving_positions(
    *, master_id: int | None = None, decided_since: datetime | None = None
) -> Moving:
    """Positions with a copy still working (PENDING, SENDING, an open order, UNKNOWN), or
    decided since ``decided_since``: they are moving, not drifting (indexed reads)."""
    rows = CopyTrade.objects.filter(status__in=decide.IN_FLIGHT, broker_final=False)
    if master_id is not None:
        rows = rows.filter(master_id=master_id)
    fields = ("follower_id", "exchange", "token", "product")
    found = {(f, (e, t, p)) for f, e, t, p in rows.values_list(*fields)}
    if decided_since is not None and master_id is not None:
        recent = CopyTrade.objects.filter(master_id=master_id, decided_at__gte=decided_since)
        found |= {(f, (e, t, p)) for f, e, t, p in recent.values_list(*fields)}
    return found


def masters_to_reconcile(accounts: Collection[int] | None = None) -> list[int]:
    """Masters with an active follower (of one of these broker accounts, if given)."""
    only: dict[str, Any] = {}
    if accounts is not None:
        only["followers__user__broker_account__pk__in"] = list(accounts)
    return list(
        Master.objects.filter(followers__is_active=True, **only)
        .distinct()
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def reconcile_master(
    master_id: int,
    broker: dict[int, list[Position]],
    *,
    moving_at_read: Moving,
    read_at: datetime,
    now: datetime,
    accounts: Collection[int] | None = None,
) -> Reconciled:
    """Compare one master's active followers' copied positions with its own (DB thread);
    only the followers of ``accounts`` (broker account ids) when given.

    A position moving when the broker's book was read, or since, is left for next time.
    Reads are batched per master (a few queries whatever the number of followers); a
    drift is written only when it starts, changes, clears or is closed."""
    result = Reconciled()
    master = Master.objects.get(pk=master_id)
    moving = moving_at_read | moving_positions(master_id=master_id, decided_since=read_at)
    master_net: dict[Key, int] = defaultdict(int)
    symbols: dict[Key, str] = {}
    for exchange, token, product, symbol, net in MasterPosition.objects.filter(
        master=master
    ).values_list("exchange", "token", "product", "trading_symbol", "net_quantity"):
        master_net[(exchange, token, product)] += net
        symbols[(exchange, token, product)] = symbol
    followers_qs = Follower.objects.filter(
        master=master, is_active=True, deactivating_at__isnull=True
    )
    if accounts is not None:
        followers_qs = followers_qs.filter(user__broker_account__pk__in=list(accounts))
    followers = list(followers_qs.select_related("user__broker_account").order_by("pk"))
    ledger: dict[int, dict[Key, int]] = defaultdict(dict)
    read: dict[tuple[int, Key], LedgerRead] = {}
    for row in PositionLedger.objects.filter(master=master, detached=False).values(
        "pk",
        "follower_id",
        "exchange",
        "token",
        "product",
        "trading_symbol",
        "net_quantity",
        "open_value",
        "updated_at",
    ):
        key_ = (row["exchange"], row["token"], row["product"])
        ledger[row["follower_id"]][key_] = row["net_quantity"]
        read[(row["follower_id"], key_)] = LedgerRead(
            row["pk"], row["net_quantity"], row["open_value"], row["updated_at"]
        )
        symbols.setdefault(key_, row["trading_symbol"])
    open_drifts: dict[int, dict[Key, PositionDrift]] = defaultdict(dict)
    for d in PositionDrift.objects.filter(master=master, resolved_at__isnull=True):
        open_drifts[d.follower_id][(d.exchange, d.token, d.product)] = d
        symbols.setdefault((d.exchange, d.token, d.product), d.trading_symbol)
    held = {k for k, v in master_net.items() if v}
    instruments: dict[Key, Any] = {}
    unchanged: list[int] = []
    for follower in followers:
        mine = ledger.get(follower.pk, {})
        drifts = open_drifts.get(follower.pk, {})
        keys = held | {k for k, v in mine.items() if v} | set(drifts)
        account = getattr(follower.user, "broker_account", None)
        positions = broker.get(account.pk) if account is not None else None
        for key in sorted(keys):
            if (follower.pk, key) in moving:
                continue
            result.compared += 1
            symbol = symbols.get(key, "")
            if key not in instruments:
                instruments[key] = decide.instrument_for(key[0], key[1], symbol)
            instrument = instruments[key]
            lot = instrument.lot_size if instrument is not None else 1
            ledger_net = mine.get(key, 0)
            broker_net = _broker_net(positions, key, symbol)
            after = reduced_ledger(ledger_net, broker_net)
            if (
                after != ledger_net
                and key[2] in REDUCIBLE_PRODUCTS
                and _book_shows(positions, key, symbol)
            ):
                if not _reduce(master, read[(follower.pk, key)], after, broker_net, now=now):
                    continue  # the ledger moved meanwhile: compared again next time
                result.reduced.append(read[(follower.pk, key)].pk)
            else:
                after = ledger_net
            comparison = compare(
                master_net=master_net.get(key, 0),
                expected=expected_position(
                    master_net.get(key, 0),
                    multiplier=follower.lot_multiplier,
                    lot_size=lot,
                    max_quantity=follower.max_quantity,
                ),
                ledger_net=after,
                broker_net=broker_net,
            )
            drift = drifts.get(key)
            carried = drift.closed_by_hand if drift is not None else 0
            if after != ledger_net:  # reported with what earlier passes of this drift reduced
                closed = carried + abs(ledger_net - after)
                comparison = replace(comparison, closed_by_hand=closed, reduced=True)
            elif carried > comparison.closed_by_hand and comparison.drift:
                comparison = replace(comparison, closed_by_hand=carried)
            if drift is None and not comparison.drift:
                continue
            if drift is not None and _same(drift, comparison, master):
                unchanged.append(drift.pk)
                result.drifts.append(drift.pk)
                continue
            try:
                with transaction.atomic():
                    _record(
                        master,
                        follower,
                        key,
                        symbol,
                        comparison,
                        drift,
                        lot=lot,
                        freeze=instrument.freeze_quantity if instrument is not None else None,
                        now=now,
                        result=result,
                    )
            except IntegrityError:
                # another copier recorded this drift first: it is compared again next time
                logger.info("drift recorded concurrently", extra={"ctx": {"key": key}})
    if unchanged:
        PositionDrift.objects.filter(pk__in=unchanged).update(last_seen_at=now)
    return result


@dataclass(frozen=True)
class LedgerRead:
    """A ledger row as reconciliation read it (what its conditional reduction checks)."""

    pk: int
    net_quantity: int
    open_value: Decimal
    updated_at: datetime


def _reduce(
    master: Master, row: LedgerRead, after: int, broker_net: int | None, *, now: datetime
) -> bool:
    """Reduce a ledger row to what the broker still holds (closed outside copytrade), only if
    it is still as read: same quantity, no exit reserved, not updated since (a fill applied
    meanwhile, or another copier, wins; the position is compared again next time). The
    position's average open price is kept; the audit row exists exactly when the change does.
    """
    before = row.net_quantity
    open_value = (row.open_value * Decimal(after) / Decimal(before)).quantize(Decimal("0.0001"))
    with transaction.atomic():
        moved = PositionLedger.objects.filter(
            pk=row.pk,
            net_quantity=before,
            exit_reserved=0,
            detached=False,
            updated_at=row.updated_at,
        ).update(net_quantity=after, open_value=open_value, updated_at=now)
        if not moved:
            return False
        target = PositionLedger.objects.select_related("follower").get(pk=row.pk)
        record_audit(
            actor=None,
            actor_repr="copier: reconciliation",
            action="ledger.closed_outside",
            target=target,
            master=master,
            before={"net_quantity": before, "open_value": row.open_value},
            after={
                "net_quantity": after,
                "open_value": open_value,
                "broker_net": broker_net,
                "reason": CLOSED_OUTSIDE,
            },
        )
    logger.warning(
        "ledger reduced: closed outside copytrade",
        extra={"ctx": {"ledger": row.pk, "before": before, "after": after, "broker": broker_net}},
    )
    return True


def _same(drift: PositionDrift, c: Comparison, master: Master) -> bool:
    """Still drifting exactly as recorded, with nothing for the policy to do."""
    closes = (
        master.reconcile_policy == Master.ReconcilePolicy.CLOSE
        and c.to_close > 0
        and drift.close_event_id is None
    )
    return (
        c.drift
        and not closes
        and (drift.close_event_id is None or drift.status == PositionDrift.Status.OPEN)
        and (
            drift.master_net,
            drift.expected,
            drift.ledger_net,
            drift.broker_net,
            drift.closed_by_hand,
            drift.to_close,
        )
        == (c.master_net, c.expected, c.ledger_net, c.broker_net, c.closed_by_hand, c.to_close)
    )


def reconcile_all(
    broker: dict[int, list[Position]], *, read_at: datetime, now: datetime
) -> Reconciled:
    """Every master at once (tests, commands); the job calls `reconcile_master` per master."""
    result = Reconciled()
    moving = moving_positions()
    for master_id in masters_to_reconcile():
        one = reconcile_master(master_id, broker, moving_at_read=moving, read_at=read_at, now=now)
        result.extend(one)
    return result


def _drift_message(follower: Follower, symbol: str, key: Key, c: Comparison) -> str:
    broker = "" if c.broker_net is None else f"; the broker holds {c.broker_net:+d}"
    note = REDUCED_NOTE if c.reduced else HAND_NOTE
    hand = note.format(qty=c.closed_by_hand) if c.closed_by_hand else ""
    return DRIFT_MESSAGE.format(
        follower=follower.display_name,
        symbol=symbol,
        product=key[2],
        ledger=c.ledger_net,
        expected=c.expected,
        master=c.master_net,
        broker=broker,
        hand=hand,
    )


def _told_already(master: Master, follower: Follower, key: Key) -> Alert | None:
    """An open DRIFT alert about this position that no drift row carries yet (mirroring
    raises one when a follower's copy filled before the master cancelled or changed its
    order): the drift takes it over instead of telling the master a second time."""
    return (
        Alert.objects.filter(
            master=master,
            follower=follower,
            kind=AlertKind.DRIFT,
            resolved_at__isnull=True,
            drifts__isnull=True,
            copy_trade__exchange=key[0],
            copy_trade__token=key[1],
            copy_trade__product=key[2],
        )
        .order_by("pk")
        .first()
    )


def _record(
    master: Master,
    follower: Follower,
    key: Key,
    symbol: str,
    c: Comparison,
    drift: PositionDrift | None,
    *,
    lot: int,
    freeze: int | None,
    now: datetime,
    result: Reconciled,
) -> None:
    if not c.drift:
        if drift is not None:
            PositionDrift.objects.filter(pk=drift.pk, resolved_at__isnull=True).update(
                resolved_at=now, last_seen_at=now, status=PositionDrift.Status.RESOLVED
            )
            if drift.alert_id is not None:
                Alert.objects.filter(pk=drift.alert_id, resolved_at__isnull=True).update(
                    resolved_at=now
                )
            result.resolved.append(drift.pk)
        return
    values: dict[str, Any] = {
        "master_net": c.master_net,
        "expected": c.expected,
        "ledger_net": c.ledger_net,
        "broker_net": c.broker_net,
        "closed_by_hand": c.closed_by_hand,
        "to_close": c.to_close,
        "last_seen_at": now,
    }
    text = _drift_message(follower, symbol, key, c)
    if drift is None:
        drift = PositionDrift.objects.create(
            master=master,
            follower=follower,
            exchange=key[0],
            token=key[1],
            trading_symbol=symbol,
            product=key[2],
            first_seen_at=now,
            note=text[:300],
            **values,
        )
        alert = _told_already(master, follower, key)
        if alert is None:
            alert = raise_alert(
                kind=AlertKind.DRIFT,
                master_id=master.pk,
                follower_id=follower.pk,
                message=text,
                at=now,
            )
            result.alerted.append(drift.pk)
        PositionDrift.objects.filter(pk=drift.pk).update(alert=alert)
    else:
        values["note"] = text[:300]
        if drift.close_event_id is not None:
            values["status"] = PositionDrift.Status.OPEN
            if c.to_close > 0:
                values["note"] = f"{text} {CLOSE_DONE_NOTE}"[:300]
        PositionDrift.objects.filter(pk=drift.pk).update(**values)
    result.drifts.append(drift.pk)
    if (
        master.reconcile_policy == Master.ReconcilePolicy.CLOSE
        and c.to_close > 0
        and drift.close_event_id is None
    ):
        result.pending_ids += _close(master, follower, key, symbol, c, drift, lot, freeze, now)


def _close(
    master: Master,
    follower: Follower,
    key: Key,
    symbol: str,
    c: Comparison,
    drift: PositionDrift,
    lot: int,
    freeze: int | None,
    now: datetime,
) -> list[int]:
    # The drift was read before this transaction: another copier may have decided its close
    # since. Take it first (conditional: a row lock on PostgreSQL, the write lock on SQLite);
    # losing raises IntegrityError, which rolls this position's pass back (`reconcile`).
    if not PositionDrift.objects.filter(pk=drift.pk, close_event__isnull=True).update(
        status=PositionDrift.Status.CLOSING
    ):
        raise IntegrityError(f"the close of drift {drift.pk} was decided by another copier")
    side = "SELL" if c.ledger_net > 0 else "BUY"
    outcome = CLOSE_OUTCOME.format(follower=follower.display_name, qty=c.to_close, symbol=symbol)
    _order, event = request_order(
        master_id=master.pk,
        prefix=RECONCILE_PREFIX,
        key={"exchange": key[0], "token": key[1], "product": key[2]},
        trading_symbol=symbol,
        side=side,
        quantity=c.to_close,
        status_label="reconcile",
        outcome_note=outcome,
        now=now,
    )
    note = (
        f"reconciliation: copied {c.ledger_net:+d}, you hold {c.master_net:+d}, "
        f"the broker holds {c.broker_net:+d} → close {c.to_close}"
    )
    ids = add_exit_copies(
        event=event,
        follower=follower,
        key={"exchange": key[0], "token": key[1], "product": key[2]},
        trading_symbol=symbol,
        side=side,
        quantity=c.to_close,
        master_quantity=c.to_close,
        lot_size=lot,
        freeze=freeze,
        note=note,
        now=now,
        manual=True,
    )
    PositionDrift.objects.filter(pk=drift.pk).update(
        status=PositionDrift.Status.CLOSING,
        close_event=event,
        note=(f"{drift.note} " if drift.note else "") + CLOSE_NOTE.format(qty=c.to_close),
    )
    return ids


# --- The copier's job ----------------------------------------------------------------------
async def read_positions(copier: Copier, account_ids: list[int]) -> dict[int, list[Position]]:
    """Each account's broker positions, where it has a session and budget to spare."""
    out: dict[int, list[Position]] = {}
    for account_id in account_ids:
        client = copier._client(account_id)
        if client is None:
            continue
        if await copier.db(budget_left, account_id) < MIN_BUDGET:
            continue
        try:
            out[account_id] = await client.positions()
        except BrokerError as exc:
            logger.warning(
                "positions not read for reconciliation",
                extra={"ctx": {"account": account_id, "error": str(exc)[:200]}},
            )
    return out


@jobs.periodic("reconcile", every=lambda config: config.reconcile, in_tick=False)
async def reconcile_job(copier: Copier) -> Reconciled:
    """Compare, record drift, close what the policy closes, and send those closes. One
    database call per master, so the copier's own work is never held up for long."""
    return await reconcile_accounts(copier)


async def reconcile_accounts(copier: Copier, only: Collection[int] | None = None) -> Reconciled:
    """One reconciliation pass: every follower (the periodic job), or now, only the followers
    of the broker accounts ``only`` whose books could be read (tracking saw a hand trade on a
    copied position: `Copier.hand_trades`). Positions read outside any transaction; each
    master compared in one database call."""
    accounts = await copier.db(accounts_to_read)
    if only is not None:
        wanted = set(only)
        accounts = [a for a in accounts if a in wanted]
        if not accounts:
            return Reconciled()
    read_at = clock.now()  # before `moving`: a copy decided in between is moving either way
    moving = await copier.db(moving_positions)
    broker = await read_positions(copier, accounts)
    scope: set[int] | None = None
    if only is not None:
        scope = set(broker)  # a follower whose book was not read is left for the periodic pass
        if not scope:
            return Reconciled()
    result = Reconciled()
    for master_id in await copier.db(masters_to_reconcile, scope):
        one = await copier.db(
            reconcile_master,
            master_id,
            broker,
            moving_at_read=moving,
            read_at=read_at,
            now=clock.now(),
            accounts=scope,
        )
        copier._dispatch(one.pending_ids)
        result.extend(one)
    if result.alerted or result.resolved or result.pending_ids or result.reduced:
        logger.warning(
            "reconciliation",
            extra={
                "ctx": {
                    "compared": result.compared,
                    "drifts": len(result.drifts),
                    "new": len(result.alerted),
                    "resolved": len(result.resolved),
                    "closes": len(result.pending_ids),
                    "reduced": len(result.reduced),
                    "accounts": sorted(scope) if scope is not None else "all",
                }
            },
        )
    return result
