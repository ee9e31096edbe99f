"""Master feed loss against the sandbox over real sockets: the loss is recorded (banner, one
alert, when it started), and after the reconnect exactly the master's missed exits are
proposed for the followers — never the entries — and sending them goes the normal way."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from django.test import Client
from django.urls import reverse

from accounts.models import BrokerAccount, User
from copytrade.lib import clock
from tests.conftest import login
from tests.engine.helpers import closing, until
from tests.engine.test_detection import _connected
from trading.brokers import sessions
from trading.engine.lifecycle import feedloss
from trading.engine.reasons import Reason
from trading.models import (
    Alert,
    AuditEvent,
    CopyTrade,
    ExitProposal,
    MasterFeed,
    PositionLedger,
)
from trading.services import NO_OPEN_PROPOSALS

Status = CopyTrade.Status


def _drop_master_session(world):
    """The master's session ends mid-day and the copier cannot log it in by itself (an
    AliceBlue-login account needs its owner): the broker refuses the old token, the copier
    has marked it expired (what it does on EC087)."""
    account = BrokerAccount.objects.get(owner=world.master.user)
    BrokerAccount.objects.filter(pk=account.pk).update(login_method="oauth")
    world.sbx.expire_sessions(world.master_client)
    sessions.mark_expired(account=account, reason="EC087 session expired")
    return account


def _reconnect_master(account):
    BrokerAccount.objects.filter(pk=account.pk).update(login_method="api_key")
    account.refresh_from_db()
    sessions.connect_api_key(account=account)


def test_a_feed_drop_and_reconnect_proposes_exactly_the_missed_exits(make_world, settings):
    settings.COPIER_STALENESS_SECONDS = 2
    world = make_world({}, {"lot_multiplier": "0.5"})
    alice, bob = world.followers
    world.tick()
    world.place("INFY-EQ", "BUY", 10)
    world.place("SBIN-EQ", "BUY", 10)
    world.tick(2)
    assert (world.net_of(alice, "INFY-EQ"), world.net_of(bob, "INFY-EQ")) == (10, 5)
    assert (world.net_of(alice, "SBIN-EQ"), world.net_of(bob, "SBIN-EQ")) == (10, 5)
    feed = MasterFeed.objects.get(master=world.master)
    assert feed.lost_at is None

    account = _drop_master_session(world)
    world.tick()
    feed.refresh_from_db()
    assert feed.lost_at is not None and feed.lost_reason == feedloss.NOT_WATCHED
    (alert,) = Alert.objects.filter(master=world.master, kind="feed_lost")
    assert alert.created_at == feed.lost_at and alert.resolved_at is None
    world.tick()  # still lost: no second alert
    assert Alert.objects.filter(master=world.master, kind="feed_lost").count() == 1

    # the dashboard says so
    client = login(Client(), world.master.user)
    page = client.get(reverse("trading:master_dashboard")).content.decode()
    assert 'data-banner="feed-lost"' in page and "since" in page

    # meanwhile the master exits INFY fully, SBIN by half, and opens INFY again (an entry)
    before = {f.pk: len(world.orders_of(f)) for f in world.followers}
    world.place("INFY-EQ", "SELL", 10)
    world.place("SBIN-EQ", "SELL", 4)
    world.place("INFY-EQ", "BUY", 6)
    time.sleep(2.3)  # past the staleness window

    _reconnect_master(account)
    world.tick()
    feed.refresh_from_db()
    alert.refresh_from_db()
    assert feed.lost_at is None and feed.recovered_at is not None
    assert alert.resolved_at is not None
    # nothing was sent by itself: the late exits are SKIPPED, the late entries EXPIRED
    assert {f.pk: len(world.orders_of(f)) for f in world.followers} == before
    late = CopyTrade.objects.filter(reason_code=Reason.LATE_EXIT, status=Status.SKIPPED)
    assert late.count() == 4
    stale = CopyTrade.objects.filter(intent="entry", status=Status.EXPIRED)
    assert stale.count() == 2

    proposals = ExitProposal.objects.filter(master=world.master, status="open")
    got = sorted(
        (p.follower.display_name, c.trading_symbol, c.side, c.quantity)
        for p in proposals.select_related("late_copy", "follower")
        for c in [p.late_copy]
    )
    assert got == sorted(
        [
            (alice.display_name, "INFY-EQ", "SELL", 10),
            (bob.display_name, "INFY-EQ", "SELL", 5),
            (alice.display_name, "SBIN-EQ", "SELL", 4),
            (bob.display_name, "SBIN-EQ", "SELL", 2),
        ]
    )
    assert not proposals.filter(late_copy__intent="entry").exists()
    world.tick()  # proposing again proposes nothing new
    assert ExitProposal.objects.count() == 4

    page = client.get(reverse("trading:master_dashboard")).content.decode()
    assert "Missed exits to review" in page
    by_symbol = {p.late_copy.trading_symbol: p.late_copy.event_id for p in proposals}
    infy_event, sbin_event = by_symbol["INFY-EQ"], by_symbol["SBIN-EQ"]

    # send INFY's (plain form post), dismiss SBIN's (HTMX)
    response = client.post(reverse("trading:master_exit_proposals_send"), {"event": infy_event})
    assert response.status_code == 302
    response = client.post(
        reverse("trading:master_exit_proposals_dismiss"),
        {"event": sbin_event},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and "Missed exits to review" not in response.content.decode()
    # a second click decides nothing twice
    again = client.post(reverse("trading:master_exit_proposals_send"), {"event": infy_event})
    assert again.status_code == 302
    assert NO_OPEN_PROPOSALS in client.get(again["Location"]).content.decode()

    sent = ExitProposal.objects.filter(status="sent")
    assert sorted(p.quantity_sent for p in sent) == [5, 10]
    assert ExitProposal.objects.filter(status="dismissed").count() == 2
    assert AuditEvent.objects.filter(action="exit_proposal.send").count() == 1
    assert AuditEvent.objects.filter(action="exit_proposal.dismiss").count() == 1

    time.sleep(1.1)  # the copier's sweep takes PENDING rows nobody claimed after a grace
    world.tick(2)
    for proposal in sent:
        (copy,) = proposal.exits.all()
        assert copy.status == Status.SUCCESS and copy.intent == "exit"
        assert copy.order_type == "MARKET" and copy.event_id == infy_event
    # followers are out of INFY (the master's re-entry was stale: not copied), SBIN untouched
    assert (world.net_of(alice, "INFY-EQ"), world.net_of(bob, "INFY-EQ")) == (0, 0)
    assert (world.net_of(alice, "SBIN-EQ"), world.net_of(bob, "SBIN-EQ")) == (10, 5)
    ledger = PositionLedger.objects.get(follower=alice, trading_symbol="INFY-EQ")
    assert ledger.net_quantity == 0 and ledger.exit_reserved == 0


def test_a_proposal_never_sends_more_than_the_ledger_holds(make_world, settings):
    settings.COPIER_STALENESS_SECONDS = 2
    world = make_world({})
    (alice,) = world.followers
    world.tick()
    world.place("INFY-EQ", "BUY", 10)
    world.tick(2)
    account = _drop_master_session(world)
    world.tick()
    world.place("INFY-EQ", "SELL", 10)
    time.sleep(2.3)
    _reconnect_master(account)
    world.tick()
    (proposal,) = ExitProposal.objects.filter(status="open")
    assert proposal.late_copy.quantity == 10
    # meanwhile the ledger holds less (an earlier exit of 7 already went out)
    PositionLedger.objects.filter(follower=alice).update(net_quantity=3)
    client = login(Client(), world.master.user)
    client.post(
        reverse("trading:master_exit_proposals_send"), {"event": proposal.late_copy.event_id}
    )
    proposal.refresh_from_db()
    assert proposal.status == "sent" and proposal.quantity_sent == 3
    (copy,) = proposal.exits.all()
    assert copy.quantity == 3 and "holds only 3" in copy.sizing_note
    # staff read the decision in the admin
    staff = User.objects.create_user(
        username="ops_feed", password="x", role="staff", is_staff=True, is_superuser=True
    )
    page = login(Client(), staff).get(reverse("admin:trading_exitproposal_changelist"))
    assert page.status_code == 200 and alice.display_name in page.content.decode()


def test_no_loss_outside_market_hours_and_a_stale_poll_is_a_loss(settings):
    now = clock.now()
    window = timedelta(seconds=30)
    fresh = feedloss.FeedSight(1, True, "disconnected", now - timedelta(seconds=5))
    assert feedloss.loss_reason(fresh, now=now, window=window) is None
    old = feedloss.FeedSight(1, True, "disconnected", now - timedelta(seconds=45))
    assert "not read for 45 s" in (feedloss.loss_reason(old, now=now, window=window) or "")
    healthy = feedloss.FeedSight(1, True, "connected", now - timedelta(seconds=600))
    assert feedloss.loss_reason(healthy, now=now, window=window) is None
    expired = feedloss.FeedSight(1, True, "session_expired", now)
    reason = feedloss.loss_reason(expired, now=now, window=window)
    assert reason == "the order push is session expired"
    settings.TRADING_ROUND_THE_CLOCK = False
    sunday = now.astimezone(clock.IST)
    while sunday.weekday() != 6:
        sunday += timedelta(days=1)
    assert not feedloss.market_hours(sunday.replace(hour=12))


def test_bad_input_to_the_proposal_actions_is_refused(master_x):
    client = login(Client(), master_x.user)
    for name in ("trading:master_exit_proposals_send", "trading:master_exit_proposals_dismiss"):
        assert client.post(reverse(name), {"event": "x"}).status_code == 400
        assert client.get(reverse(name)).status_code == 405
        response = client.post(reverse(name), {"event": 999999})
        assert response.status_code == 302


def test_the_running_copier_notices_a_lost_master_session_by_itself(make_world, settings):
    """The whole loop, nothing marked by hand: AliceBlue ends the master's session, the
    copier's push/poll see it, the loss is recorded; after the master reconnects, its exit
    made meanwhile is proposed and its entry is not."""
    settings.COPIER_STALENESS_SECONDS = 2
    world = make_world({})
    (alice,) = world.followers
    world.tick()
    world.place("INFY-EQ", "BUY", 10)
    world.tick(2)
    assert world.net_of(alice, "INFY-EQ") == 10
    account = BrokerAccount.objects.get(owner=world.master.user)
    # an AliceBlue-login master: the copier cannot log it in again by itself
    BrokerAccount.objects.filter(pk=account.pk).update(login_method="oauth")

    def lost():
        return MasterFeed.objects.filter(master=world.master, lost_at__isnull=False).exists()

    def proposed():
        return ExitProposal.objects.filter(master=world.master).exists() and not lost()

    async def body(copier):
        await until(_connected(world))
        await asyncio.to_thread(world.sbx.expire_sessions, world.master_client)
        await until(lost, timeout=20)
        await asyncio.to_thread(world.place, "INFY-EQ", "SELL", 10)
        await asyncio.to_thread(world.place, "SBIN-EQ", "BUY", 5)
        await asyncio.sleep(2.3)
        await asyncio.to_thread(closing(lambda: _reconnect_master(account)))
        await until(proposed, timeout=20)

    world.run(body, poll_fast=0.2, feed_check=0.2, refresh=0.5)
    (alert,) = Alert.objects.filter(master=world.master, kind="feed_lost")
    assert alert.resolved_at is not None and "session" in alert.message
    (proposal,) = ExitProposal.objects.select_related("late_copy").all()
    assert (proposal.late_copy.trading_symbol, proposal.late_copy.side) == ("INFY-EQ", "SELL")
    assert proposal.late_copy.quantity == 10 and proposal.follower == alice
    entry = CopyTrade.objects.get(trading_symbol="SBIN-EQ")
    assert entry.status == Status.EXPIRED and entry.reason_code == Reason.STALE
    # nothing reached the follower's account while the master's feed was lost
    assert [o["side"] for o in world.orders_of(alice)] == ["BUY"]
