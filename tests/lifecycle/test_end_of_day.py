"""The end of the trading day: unsent rows expire at their exchange's close (transitions
recorded, an expired exit alerted) and sessions are logged out once every exchange has closed,
staying out until the next day — the real copier against the sandbox, the product's clock and
the sandbox's moved together."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest

from accounts.models import BrokerAccount
from copytrade.lib import calendar, clock
from tests.engine.conftest import account_of
from tests.engine.helpers import expire_oauth_session
from trading.engine.lifecycle import day
from trading.engine.reasons import Reason
from trading.models import Alert, AlertKind, AuditEvent, BrokerSession, CopyTrade

pytestmark = pytest.mark.django_db(transaction=True)
Status = CopyTrade.Status


def _last_trading_day() -> date:
    """The latest day on or before today (IST) on which NSE and MCX both trade."""
    found = clock.today_ist()
    while not (calendar.is_trading_day("NSE", found) and calendar.is_trading_day("MCX", found)):
        found -= timedelta(days=1)
    return found


def _at(on: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(on, time(hour, minute), tzinfo=clock.IST)


def _move(fake: clock.FrozenClock, sbx, to: datetime) -> None:  # type: ignore[no-untyped-def]
    fake.set(to)
    sbx.set_clock(to)


def _state(account: BrokerAccount) -> BrokerSession:
    return BrokerSession.objects.get(account=account)


def test_a_waiting_exit_expires_at_the_close_and_sessions_log_out_after_the_last_close(
    make_world, sbx, settings
):
    trading_day = _last_trading_day()
    start = _at(trading_day, 14, 0)
    sbx.set_clock(start)
    settings.TRADING_ROUND_THE_CLOCK = False
    nse_close = calendar.session_end("NSE", trading_day)
    last_close = calendar.day_end(trading_day)
    assert nse_close is not None and last_close is not None and last_close > nse_close
    with clock.frozen(start) as fake:
        world = make_world({})
        (follower,) = world.followers
        master_account = BrokerAccount.objects.get(owner=world.master.user)
        follower_account = account_of(follower)
        world.tick()
        world.place("INFY-EQ", "BUY", 2)
        world.tick(2)
        assert world.net_of(follower, "INFY-EQ") == 2
        # the follower's AliceBlue login (OAuth) ended: its exit waits for the owner's login
        expire_oauth_session(follower_account, reason="EC087")
        world.place("INFY-EQ", "SELL", 2)
        world.tick()
        exit_copy = world.copies(follower)[-1]
        assert (exit_copy.status, exit_copy.reason_code) == (Status.PENDING, Reason.NEEDS_LOGIN)

        _move(fake, sbx, nse_close - timedelta(minutes=1))
        world.tick()
        exit_copy.refresh_from_db()
        assert exit_copy.status == Status.PENDING  # NSE still trades

        _move(fake, sbx, nse_close + timedelta(seconds=1))
        world.tick()
        exit_copy.refresh_from_db()
        assert (exit_copy.status, exit_copy.reason_code) == (Status.EXPIRED, Reason.END_OF_DAY)
        assert "NSE closed at" in exit_copy.reason and "needs today's login" in exit_copy.reason
        last = exit_copy.transitions.order_by("pk").last()
        assert last is not None
        assert (last.from_status, last.to_status) == (Status.PENDING, Status.EXPIRED)
        (alert,) = Alert.objects.filter(kind=AlertKind.EXIT_DELAYED, copy_trade=exit_copy)
        assert "still holds" in alert.message
        assert world.net_of(follower, "INFY-EQ") == 2  # never sent
        # MCX still trades: the master's session stays
        assert _state(master_account).state == BrokerSession.State.READY

        _move(fake, sbx, last_close + timedelta(seconds=1))
        world.tick()
        master_session = _state(master_account)
        assert master_session.state == BrokerSession.State.NEEDS_LOGIN
        assert master_session.session_token_encrypted == ""
        assert "Logged out at the end of the trading day" in master_session.last_error
        logouts = AuditEvent.objects.filter(
            action="broker_session.logout", target_id=str(master_account.pk)
        )
        assert logouts.count() == 1
        connects = AuditEvent.objects.filter(
            action="broker_session.connect", target_id=str(master_account.pk)
        )
        logins_before = connects.count()
        world.tick()  # the owner signed in today, but the day is over: no new login
        assert _state(master_account).state == BrokerSession.State.NEEDS_LOGIN
        assert (connects.count(), logouts.count()) == (logins_before, 1)

        next_morning = _at(trading_day + timedelta(days=1), 8, 0)
        _move(fake, sbx, next_morning)
        sbx.daily_login(world.master_client)  # the owner signs in to AliceBlue next morning
        world.tick()
        master_session = _state(master_account)
        assert master_session.state == BrokerSession.State.READY
        assert master_session.trading_day == next_morning.date()
    exit_copy.refresh_from_db()
    assert exit_copy.status == Status.EXPIRED  # never sent on a later day
    assert world.net_of(follower, "INFY-EQ") == 2


def test_rows_expire_by_their_own_exchange_and_the_day_they_were_decided(settings):
    settings.TRADING_ROUND_THE_CLOCK = False
    trading_day = _last_trading_day()
    nse_close = calendar.session_end("NSE", trading_day)
    mcx_close = calendar.session_end("MCX", trading_day)
    assert nse_close is not None and mcx_close is not None
    morning = _at(trading_day, 10, 0)
    assert day.row_cutoff("NSE", morning) == nse_close
    assert day.row_cutoff("MCX", morning) == mcx_close
    evening = nse_close + timedelta(minutes=30)  # decided after NSE closed: that day's end
    assert day.row_cutoff("NSE", evening) == _at(trading_day + timedelta(days=1), 0, 0)
    assert not day.after_close(mcx_close - timedelta(seconds=1))
    assert day.after_close(mcx_close)
    settings.TRADING_ROUND_THE_CLOCK = True  # the sandbox: everything ends at midnight
    assert day.row_cutoff("NSE", evening) == _at(trading_day + timedelta(days=1), 0, 0)
    assert not day.after_close(_at(trading_day, 23, 59))
