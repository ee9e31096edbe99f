"""Master feed loss (issue 5, item 6): copying stops loudly, and missed exits are proposed.

The copier's periodic job `feed_watch` (every ``CopierConfig.feed_check`` seconds, and once
per tick) does two things:

1. **Loss and recovery.** A master whose feed was watched today (``MasterFeed.baseline_day``)
   is *lost* while the copier cannot see its orders in time: its session is gone (not
   watched: expired, needs today's login), its push says so (``session_expired``,
   ``needs_login``, ``stopped``), or the push is down and no poll of its order book has
   succeeded within the staleness window (anything found later is stale anyway). The loss is
   recorded once, with a conditional UPDATE (``MasterFeed.lost_at IS NULL`` → now), and in
   the same transaction one ``FEED_LOST`` alert whose ``created_at`` is when the loss
   started (the digest reports it only once it has lasted its configured time); the
   dashboards' banners read ``lost_at``. Recovery clears ``lost_at``, sets ``recovered_at``
   and resolves the alert. Outside market hours nothing is a loss (sessions end daily), and a
   loss still open when the market closes is closed with it.

2. **Proposals.** A master exit found after the staleness window (a feed loss, a copier
   restart) was decided as a SKIPPED ``late_exit`` copy per follower: never sent by itself,
   and never an entry (late entries are EXPIRED). Each such copy gets one `ExitProposal`
   (unique per copy), which the master sends or dismisses on the dashboard
   (`send_proposals` / `dismiss_proposals`, through `trading.services`). Sending writes new
   EXIT copies of the same master event, sized from the position ledger (never more than it
   holds), MARKET, that the copier sends on its normal path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction

from accounts.models import Master, User
from copytrade.lib import calendar, clock
from trading.engine import jobs
from trading.engine.alerts import raise_alert
from trading.engine.decide import instrument_for, staleness
from trading.engine.lifecycle.exits import add_exit_copies, held_in_ledger
from trading.engine.reasons import Reason
from trading.models import (
    Alert,
    AlertKind,
    CopyTrade,
    ExitProposal,
    MasterFeed,
    MasterOrderEvent,
)

if TYPE_CHECKING:
    from trading.engine.runner import Copier

logger = logging.getLogger("trading.engine.lifecycle")

#: Push states in which the copier sees nothing of the master's orders.
LOST_STATES = frozenset({"session_expired", "needs_login", "stopped"})
#: Exchanges whose hours make a mid-day loss matter (equity/F&O day, commodities evening).
WATCHED_EXCHANGES = ("NSE", "MCX")

LOST_MESSAGE = (
    "Your order feed was lost at {at:%H:%M:%S} IST ({reason}). Nothing is copied until it is "
    "back; exits you make meanwhile will be proposed to you for your followers when it is."
)
NOT_WATCHED = "your AliceBlue session is not ready"
PUSH_DOWN = "the order push is {state}"
NO_POLL = "the order push is {state} and the order book was not read for {seconds} s"
MARKET_CLOSED = "market closed"


@dataclass(frozen=True)
class FeedSight:
    """What the copier sees of one master's feed right now."""

    master_id: int
    watched: bool
    push_state: str = ""
    last_poll_at: datetime | None = None


def loss_reason(sight: FeedSight, *, now: datetime, window: timedelta) -> str | None:
    """Why the copier cannot see this master's orders in time, or None if it can (pure)."""
    if not sight.watched:
        return NOT_WATCHED
    state = sight.push_state
    if state in LOST_STATES:
        return PUSH_DOWN.format(state=state.replace("_", " "))
    if state != "connected" and sight.last_poll_at is not None:
        silent = now - sight.last_poll_at
        if silent > window:
            return NO_POLL.format(
                state=(state or "down").replace("_", " "), seconds=int(silent.total_seconds())
            )
    return None


def market_hours(now: datetime) -> bool:
    rtc = calendar.round_the_clock_from_settings()
    return any(calendar.is_open(x, now, round_the_clock=rtc) for x in WATCHED_EXCHANGES)


@dataclass
class FeedChanges:
    lost: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)


def update_feeds(sights: list[FeedSight], *, now: datetime) -> FeedChanges:
    """Record losses and recoveries of every master feed watched today (DB thread)."""
    changes = FeedChanges()
    window = staleness()
    open_market = market_hours(now)
    seen = {s.master_id: s for s in sights}
    today = clock.today_ist()
    feeds = MasterFeed.objects.filter(baseline_day=today).values_list(
        "master_id", "push_state", "lost_at"
    )
    for master_id, push_state, lost_at in feeds:
        sight = seen.get(master_id) or FeedSight(master_id, False, push_state)
        reason = loss_reason(sight, now=now, window=window) if open_market else None
        if reason is not None and lost_at is None:
            if start_loss(master_id, reason=reason, at=now):
                changes.lost.append(master_id)
        elif (
            reason is None
            and lost_at is not None
            and end_loss(master_id, at=now, why="" if open_market else MARKET_CLOSED)
        ):
            changes.recovered.append(master_id)
    # A loss left open on an earlier day (the copier stopped with it) ends with that day.
    for master_id in (
        MasterFeed.objects.filter(lost_at__isnull=False)
        .exclude(baseline_day=today)
        .values_list("master_id", flat=True)
    ):
        if end_loss(master_id, at=now, why=MARKET_CLOSED):
            changes.recovered.append(master_id)
    return changes


def start_loss(master_id: int, *, reason: str, at: datetime) -> bool:
    """Record the start of a loss and its one alert (once: a conditional UPDATE)."""
    with transaction.atomic():
        took = MasterFeed.objects.filter(master_id=master_id, lost_at__isnull=True).update(
            lost_at=at, lost_reason=reason[:300]
        )
        if not took:
            return False
        raise_alert(
            kind=AlertKind.FEED_LOST,
            master_id=master_id,
            message=LOST_MESSAGE.format(at=at.astimezone(clock.IST), reason=reason),
            at=at,
        )
    return True


def end_loss(master_id: int, *, at: datetime, why: str = "") -> bool:
    """The feed is back (or the day ended): clear the loss, resolve its alert."""
    with transaction.atomic():
        took = MasterFeed.objects.filter(master_id=master_id, lost_at__isnull=False).update(
            lost_at=None, lost_reason=why, recovered_at=at
        )
        if not took:
            return False
        Alert.objects.filter(
            master_id=master_id, kind=AlertKind.FEED_LOST, resolved_at__isnull=True
        ).update(resolved_at=at)
    logger.info("master feed back", extra={"ctx": {"master": master_id, "why": why}})
    return True


# --- Proposals ----------------------------------------------------------------------------
def propose_late_exits(*, now: datetime, limit: int = 1000) -> list[int]:
    """One OPEN proposal per late exit copy of today that has none (idempotent)."""
    since = datetime.combine(clock.today_ist(), datetime.min.time(), tzinfo=clock.IST)
    late = list(
        CopyTrade.objects.filter(
            reason_code=Reason.LATE_EXIT.value,
            status=CopyTrade.Status.SKIPPED,
            decided_at__gte=since,
            exit_proposal__isnull=True,
            quantity__gt=0,
        )
        .order_by("pk")
        .values_list("pk", "master_id", "follower_id")[:limit]
    )
    if not late:
        return []
    ExitProposal.objects.bulk_create(
        [
            ExitProposal(master_id=m, follower_id=f, late_copy_id=pk, created_at=now)
            for pk, m, f in late
        ],
        ignore_conflicts=True,  # another copier proposed it first
    )
    return [pk for pk, _m, _f in late]


@dataclass
class Decided:
    proposals: list[int] = field(default_factory=list)
    copy_trade_ids: list[int] = field(default_factory=list)
    nothing: list[int] = field(default_factory=list)


SENT_NOTE = "Missed exit sent by {who} after the master's feed came back: {sizing}"
CUT_NOTE = "the ledger holds only {held} to exit"
NOTHING_NOTE = "Nothing left to exit: the follower's copied position no longer covers it."


def open_proposals(master: Master, event_id: int) -> list[ExitProposal]:
    return list(
        ExitProposal.objects.filter(
            master=master, status=ExitProposal.Status.OPEN, late_copy__event_id=event_id
        )
        .select_related("late_copy", "follower")
        .order_by("pk")
    )


def send_proposals(*, master: Master, event_id: int, actor: User, now: datetime) -> Decided:
    """Send the open proposals of one master event (call inside a transaction): each is
    taken by a conditional UPDATE (two clicks, two tabs: sent once), sized from the ledger
    (never more than it holds), written as PENDING EXIT copies for the copier to send."""
    decided = Decided()
    proposals = open_proposals(master, event_id)
    if not proposals:
        return decided
    event = MasterOrderEvent.objects.select_related("master_order").get(pk=event_id)
    order = event.master_order
    instrument = instrument_for(order.exchange, order.token, order.trading_symbol)
    freeze = instrument.freeze_quantity if instrument is not None else None
    for proposal in proposals:
        late = proposal.late_copy
        key = {"exchange": late.exchange, "token": late.token, "product": late.product}
        held = held_in_ledger(
            master_id=late.master_id, follower_id=late.follower_id, key=key, side=late.side
        )
        lot = max(late.lot_size or 1, 1)
        quantity = min(late.quantity, held)
        note = SENT_NOTE.format(who=actor.get_username(), sizing=late.sizing_note)
        if quantity < late.quantity:
            note = f"{note} ({CUT_NOTE.format(held=held)})"
            if quantity != held:
                quantity = quantity // lot * lot
        status = ExitProposal.Status.SENT if quantity > 0 else ExitProposal.Status.NOTHING
        took = ExitProposal.objects.filter(pk=proposal.pk, status=ExitProposal.Status.OPEN).update(
            status=status,
            decided_at=now,
            decided_by=actor,
            quantity_sent=quantity,
            note=(note if quantity > 0 else NOTHING_NOTE)[:300],
        )
        if not took:
            continue
        decided.proposals.append(proposal.pk)
        if quantity == 0:
            decided.nothing.append(proposal.pk)
            continue
        ids = add_exit_copies(
            event=event,
            follower=proposal.follower,
            key=key,
            trading_symbol=late.trading_symbol,
            side=late.side,
            quantity=quantity,
            master_quantity=late.master_quantity,
            lot_size=lot,
            freeze=freeze,
            note=note,
            now=now,
            manual=late.manual,
            master_accepted_at=late.master_accepted_at,
        )
        proposal.exits.add(*ids)
        decided.copy_trade_ids += ids
    return decided


def dismiss_proposals(*, master: Master, event_id: int, actor: User, now: datetime) -> Decided:
    """Dismiss the open proposals of one master event (call inside a transaction)."""
    decided = Decided()
    for proposal in open_proposals(master, event_id):
        took = ExitProposal.objects.filter(pk=proposal.pk, status=ExitProposal.Status.OPEN).update(
            status=ExitProposal.Status.DISMISSED,
            decided_at=now,
            decided_by=actor,
            note=f"Dismissed by {actor.get_username()}."[:300],
        )
        if took:
            decided.proposals.append(proposal.pk)
    return decided


# --- The copier's job ----------------------------------------------------------------------
def sights_of(copier: Copier) -> list[FeedSight]:
    return [
        FeedSight(master_id, True, watch.push_state, watch.last_poll_at)
        for master_id, watch in copier.masters.items()
        if copier._client(watch.account_id) is watch.client
    ]


def check_feeds(sights: list[FeedSight], now: datetime) -> tuple[FeedChanges, list[int]]:
    changes = update_feeds(sights, now=now)
    proposed = propose_late_exits(now=now)
    return changes, proposed


@jobs.periodic("feed_watch", every=lambda config: config.feed_check)
async def feed_watch(copier: Copier) -> None:
    """Feed losses and recoveries of every master; proposals for late exits."""
    changes, proposed = await copier.db(check_feeds, sights_of(copier), clock.now())
    if changes.lost or changes.recovered or proposed:
        logger.warning(
            "master feeds",
            extra={
                "ctx": {
                    "lost": changes.lost,
                    "recovered": changes.recovered,
                    "proposed": len(proposed),
                }
            },
        )
