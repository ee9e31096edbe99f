"""Sessions through the day: a session AliceBlue ends mid-day (EC087 / HTTP 401), for an
API-key account (logged in again by the copier once its owner signed in to AliceBlue today)
and an AliceBlue-login (OAuth) account (needs its owner's login: entries SKIPPED, exits wait,
one alert), against the sandbox over real sockets."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.models import BrokerAccount
from copytrade.lib.secret import Secret
from tests.engine.conftest import account_of
from tests.lifecycle.conftest import connect_oauth
from trading.brokers import sessions
from trading.brokers.aliceblue.types import Generation, SessionGrant
from trading.engine.lifecycle import logins
from trading.engine.reasons import Reason
from trading.models import Alert, AlertKind, BrokerSession, CopyTrade

pytestmark = pytest.mark.django_db(transaction=True)
Status = CopyTrade.Status


def _session(account: BrokerAccount) -> BrokerSession:
    return BrokerSession.objects.get(account=account)


def _needs_login_alerts(world) -> list[Alert]:  # type: ignore[no-untyped-def]
    return list(Alert.objects.filter(master=world.master, kind=AlertKind.NEEDS_LOGIN))


def test_an_api_key_follower_whose_session_ends_mid_day_is_logged_in_again_and_copied(
    make_world,
):
    world = make_world({})
    (follower,) = world.followers
    account = account_of(follower)
    world.tick()
    before = _session(account).obtained_at
    assert world.sbx.expire_sessions(world.client_of(follower)) == 1  # AliceBlue ends it
    world.place("INFY-EQ", "BUY", 2)
    world.tick(2)
    (copy,) = world.copies(follower)
    assert copy.status == Status.SUCCESS
    assert world.net_of(follower, "INFY-EQ") == 2
    assert len(world.orders_of(follower)) == 1  # refused once (nothing placed), sent once
    session = _session(account)
    assert session.state == BrokerSession.State.READY and session.obtained_at != before
    assert _needs_login_alerts(world) == []


def test_an_api_key_master_whose_session_ends_mid_day_is_logged_in_again_and_watched(
    make_world,
):
    world = make_world({}, {"lot_multiplier": "2"})
    one, two = world.followers
    master_account = BrokerAccount.objects.get(owner=world.master.user)
    world.tick()
    before = _session(master_account).obtained_at
    world.sbx.expire_sessions(world.master_client)
    world.tick()  # the master's poll gets 401: the copier logs the master in again
    session = _session(master_account)
    assert session.state == BrokerSession.State.READY and session.obtained_at != before
    world.place("INFY-EQ", "BUY", 3)
    world.tick(2)
    assert [c.status for c in world.copies()] == [Status.SUCCESS, Status.SUCCESS]
    assert (world.net_of(one, "INFY-EQ"), world.net_of(two, "INFY-EQ")) == (3, 6)
    assert _needs_login_alerts(world) == []


def test_without_the_owners_daily_sign_in_entries_are_skipped_until_the_owner_signs_in(
    make_world,
):
    # `late`'s owner has not signed in to AliceBlue today, and the session it holds (from
    # before AliceBlue ended it) is refused
    world = make_world({}, {"connect": False})
    ready, late = world.followers
    account = account_of(late)
    client_id = world.client_of(late)
    sessions._store_grant(
        account=account,
        grant=SessionGrant(Generation.ANT, client_id, Secret("ended-session")),
        method="api_key",
        actor=None,
        request=None,
    )
    world.tick()
    world.place("INFY-EQ", "BUY", 1)
    world.tick(2)
    copy = world.copies(late)[-1]
    assert (copy.status, copy.reason_code) == (Status.SKIPPED, Reason.NEEDS_LOGIN)
    session = _session(account)
    assert session.state == BrokerSession.State.NEEDS_LOGIN
    assert "sign in to AliceBlue today" in session.last_error
    assert world.copies(ready)[-1].status == Status.SUCCESS
    world.place("INFY-EQ", "BUY", 1)  # decided while the account needs its login
    world.tick(2)
    copy = world.copies(late)[-1]
    assert (copy.status, copy.reason_code) == (Status.SKIPPED, Reason.NEEDS_LOGIN)
    alerts = _needs_login_alerts(world)
    assert len(alerts) == 1 and alerts[0].follower_id == late.pk  # once, not per copy
    assert alerts[0].resolved_at is None
    assert world.orders_of(late) == []
    world.sbx.daily_login(client_id)  # the owner signs in: it reconnects by itself
    world.tick()
    assert _session(account).state == BrokerSession.State.READY
    world.place("INFY-EQ", "BUY", 1)
    world.tick(2)
    assert world.copies(late)[-1].status == Status.SUCCESS
    assert world.net_of(late, "INFY-EQ") == 1
    (alert,) = _needs_login_alerts(world)
    assert alert.resolved_at is not None


def test_an_oauth_follower_whose_session_ends_needs_todays_login_entries_skip_exits_wait(
    make_world,
):
    world = make_world({})
    (follower,) = world.followers
    account = account_of(follower)
    connect_oauth(world.sbx, account)
    assert _session(account).generation == Generation.OPEN_API.value
    world.tick()
    world.place("INFY-EQ", "BUY", 2)
    world.tick(2)
    assert world.net_of(follower, "INFY-EQ") == 2
    world.sbx.expire_sessions(world.client_of(follower))  # EC087 on the Open API
    world.place("INFY-EQ", "BUY", 1)
    world.tick(2)
    entry = world.copies(follower)[-1]
    assert (entry.status, entry.reason_code) == (Status.SKIPPED, Reason.NEEDS_LOGIN)
    session = _session(account)
    assert session.state == BrokerSession.State.NEEDS_LOGIN
    assert "today's login is needed" in session.last_error
    world.place("INFY-EQ", "SELL", 3)  # the master goes flat: the follower's exit waits
    world.tick(2)
    exit_copy = world.copies(follower)[-1]
    assert (exit_copy.intent, exit_copy.status) == ("exit", Status.PENDING)
    assert exit_copy.reason_code == Reason.NEEDS_LOGIN
    assert world.net_of(follower, "INFY-EQ") == 2
    alerts = _needs_login_alerts(world)
    assert len(alerts) == 1 and alerts[0].follower_id == follower.pk
    assert "needs today's login" in alerts[0].message
    # the copier cannot log an OAuth account in: still waiting after another pass
    world.tick()
    exit_copy.refresh_from_db()
    assert exit_copy.status == Status.PENDING
    connect_oauth(world.sbx, account)  # the owner signs in through AliceBlue again
    world.tick(2)
    exit_copy.refresh_from_db()
    assert exit_copy.status == Status.SUCCESS
    assert world.net_of(follower, "INFY-EQ") == 0
    (alert,) = _needs_login_alerts(world)
    assert alert.resolved_at is not None


def test_a_session_lost_twice_in_a_day_alerts_again_but_never_per_copy(make_world):
    world = make_world({})
    (follower,) = world.followers
    account = account_of(follower)
    connect_oauth(world.sbx, account)
    owner = logins.owner_of(account.pk)
    assert owner is not None and not owner.auto_login
    now = sessions.clock.now()
    assert logins.session_lost(account.pk, "EC087", None, now) is False
    assert logins.session_lost(account.pk, "EC087", None, now) is False
    assert len(_needs_login_alerts(world)) == 1
    connect_oauth(world.sbx, account)
    logins.sweep_alerts(now)
    assert logins.session_lost(account.pk, "EC087", None, now) is False
    assert [a.resolved_at is None for a in _needs_login_alerts(world)] == [False, True]


def test_an_api_key_master_without_the_daily_sign_in_stops_loudly_and_resumes_after_it(
    make_world,
):
    world = make_world({})
    (follower,) = world.followers
    master_account = BrokerAccount.objects.get(owner=world.master.user)
    world.tick()
    # the master's session ends; AliceBlue refuses the copier's login (no sign-in today)
    world.sbx.expire_sessions(world.master_client)
    world.sbx.set_clock(world.sbx.now() + timedelta(days=1))  # a day the owner has not signed in
    try:
        world.tick(2)
        session = _session(master_account)
        assert session.state == BrokerSession.State.NEEDS_LOGIN
        assert "sign in to AliceBlue today" in session.last_error
        (alert,) = _needs_login_alerts(world)
        assert alert.follower_id is None and f"({master_account.client_id})" in alert.message
        world.tick()
        assert len(_needs_login_alerts(world)) == 1  # once, not per pass
    finally:
        world.sbx.reset_clock()
    world.tick()  # back on the signed-in day: the copier logs the master in by itself
    assert _session(master_account).state == BrokerSession.State.READY
    world.place("INFY-EQ", "BUY", 2)
    world.tick(2)
    assert world.copies(follower)[-1].status == Status.SUCCESS
    (alert,) = _needs_login_alerts(world)
    assert alert.resolved_at is not None
