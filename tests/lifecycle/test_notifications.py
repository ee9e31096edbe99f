"""The alert digest: one email per master per interval (django.core.mail.outbox), never the
same alert twice (two copiers included), feed losses only once they lasted long enough, a
failed send retried, masters without an address recorded and skipped, never a secret. The
copier's own job runs it (through its database thread); the daily-loss alert comes from the
engine against the sandbox."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from smtplib import SMTPException
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend

from accounts.models import Master, User
from copytrade.lib import clock
from tests.engine.conftest import account_of, make_world, sbx  # noqa: F401  (engine fixtures)
from tests.factories import BrokerAccountFactory, FollowerFactory, MasterFactory
from trading.engine import jobs
from trading.engine.config import CopierConfig
from trading.engine.lifecycle import notify
from trading.engine.runner import Copier
from trading.models import Alert, AlertKind, CopyTrade, DailyPnl

T0 = datetime(2026, 3, 3, 10, 0, tzinfo=clock.IST)
Kind = AlertKind


def run_job(copiers: int = 1) -> None:
    """The copier's ``notify`` job, once, in ``copiers`` copier processes at the same time."""

    async def go() -> None:
        instances = [
            Copier(name=f"notify-{n}", config=CopierConfig(pnl_refresh=0, contracts=False))
            for n in range(copiers)
        ]
        for copier in instances:
            await copier.start()
        try:
            await asyncio.gather(*(jobs.JOBS["notify"].run(c) for c in instances))
        finally:
            for copier in instances:
                await copier.close()

    asyncio.run(go())


def master_with_followers(name: str, email: str = "") -> tuple[Master, list[Any]]:
    master = MasterFactory(user__username=name, user__email=email or f"{name}@example.com")
    followers = [
        FollowerFactory(master=master, display_name=f"{name}-F{n}", user__username=f"{name}_f{n}")
        for n in (1, 2)
    ]
    return master, followers


def alert(master: Master, kind: str, message: str, at: datetime, **extra: Any) -> Alert:
    return Alert.objects.create(master=master, kind=kind, message=message, created_at=at, **extra)


@pytest.fixture
def frozen():
    with clock.frozen(T0) as fake:
        yield fake


def test_the_digest_is_one_email_per_master_and_never_sends_an_alert_twice(
    transactional_db, frozen
):
    mx, (x1, x2) = master_with_followers("mx")
    my, (y1, _) = master_with_followers("my")
    alert(mx, Kind.COPY_FAILED, "BUY 10 INFY-EQ refused: margin", T0, follower=x1)
    alert(mx, Kind.NEEDS_LOGIN, "needs today's AliceBlue login", T0, follower=x2)
    alert(mx, Kind.DAILY_LOSS, "Daily-loss limit reached", T0, follower=x1)
    alert(mx, Kind.DRIFT, "SBIN-EQ: ledger 10, master scaled 0", T0, follower=x2)
    alert(my, Kind.COPY_FAILED, "SELL 5 SBIN-EQ rejected", T0, follower=y1)

    run_job()

    assert sorted(m.to[0] for m in mail.outbox) == ["mx@example.com", "my@example.com"]
    to_x = next(m for m in mail.outbox if m.to == ["mx@example.com"])
    assert to_x.subject.startswith("[copytrade] 4 alert(s)")
    for text in ("margin", "today's AliceBlue login", "Daily-loss", "ledger 10", "mx-F1"):
        assert text in to_x.body
    assert "SBIN-EQ rejected" not in to_x.body  # another master's alert
    assert not Alert.objects.filter(notified_at__isnull=True).exists()
    assert set(Alert.objects.values_list("notified_via", flat=True)) == {notify.VIA_EMAIL}

    run_job()  # nothing new: nothing sent
    assert len(mail.outbox) == 2

    # A new alert within the interval waits for the next digest (one email, not a flood).
    frozen.advance(60)
    alert(mx, Kind.COPY_FAILED, "second failure", clock.now(), follower=x1)
    alert(mx, Kind.COPY_FAILED, "third failure", clock.now(), follower=x2)
    run_job()
    assert len(mail.outbox) == 2
    frozen.advance(notify.digest_interval())
    run_job()
    assert len(mail.outbox) == 3
    later = mail.outbox[-1]
    assert later.to == ["mx@example.com"] and "second failure" in later.body
    assert "third failure" in later.body and "margin" not in later.body


def test_an_unknown_copy_shortens_the_interval(transactional_db, frozen, settings):
    settings.NOTIFY_URGENT_SECONDS = 30
    mx, (x1, _) = master_with_followers("mu")
    alert(mx, Kind.COPY_FAILED, "first", T0, follower=x1)
    run_job()
    frozen.advance(31)
    alert(mx, Kind.COPY_FAILED, "a failure can wait", clock.now(), follower=x1)
    run_job()
    assert len(mail.outbox) == 1
    alert(mx, Kind.UNKNOWN_ORDER, "outcome unknown: check the broker", clock.now(), follower=x1)
    run_job()
    assert len(mail.outbox) == 2
    body = mail.outbox[-1].body
    assert "outcome unknown" in body and "a failure can wait" in body  # one email, both
    assert body.index("outcome unknown") < body.index("a failure can wait")  # urgent first


def test_two_copiers_never_send_the_same_alert(transactional_db, frozen):
    masters = [master_with_followers(f"m2c{n}")[0] for n in range(3)]
    for master in masters:
        for k in range(5):
            alert(master, Kind.COPY_FAILED, f"failure {k} of {master.user.username}", T0)
    run_job(copiers=2)
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        f"{m.user.username}@example.com" for m in masters
    )
    assert all(m.body.count("failure ") == 5 for m in mail.outbox)
    # and a claim that lost sees nothing
    alert(masters[0], Kind.DRIFT, "drift", T0)
    first = notify.claim(masters[0].pk, clock.now())
    assert first is not None and notify.claim(masters[0].pk, clock.now()) is None


def test_a_feed_loss_is_sent_only_once_it_lasted_longer_than_the_setting(
    transactional_db, frozen, settings
):
    settings.NOTIFY_FEED_LOST_SECONDS = 120
    mx, _ = master_with_followers("mf")
    short = alert(
        mx, Kind.FEED_LOST, "feed lost (short)", T0, resolved_at=T0 + timedelta(seconds=30)
    )
    ongoing = alert(mx, Kind.FEED_LOST, "feed lost: push and poll failing", T0)
    run_job()
    assert mail.outbox == []
    short.refresh_from_db()
    assert short.notified_via == notify.VIA_SHORT  # recorded, never sent
    frozen.advance(119)
    run_job()
    assert mail.outbox == []
    frozen.advance(2)
    run_job()
    assert len(mail.outbox) == 1
    assert "push and poll failing" in mail.outbox[0].body
    assert "(short)" not in mail.outbox[0].body
    ongoing.refresh_from_db()
    assert ongoing.notified_via == notify.VIA_EMAIL


def test_a_master_without_email_is_recorded_and_skipped(transactional_db, frozen, caplog):
    mx, (x1, _) = master_with_followers("mn")
    User.objects.filter(pk=mx.user_id).update(email="")
    row = alert(mx, Kind.COPY_FAILED, "failed", T0, follower=x1)
    run_job()
    assert mail.outbox == []
    row.refresh_from_db()
    assert row.notified_via == notify.VIA_NO_EMAIL and row.notified_at is not None
    assert "no email address" in caplog.text


class FailingBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Any) -> int:
        raise SMTPException("421 service not available")


def test_a_failed_send_is_retried_not_lost(transactional_db, frozen, settings):
    mx, (x1, _) = master_with_followers("mr")
    row = alert(mx, Kind.UNKNOWN_ORDER, "unknown outcome", T0, follower=x1)
    settings.EMAIL_BACKEND = f"{__name__}.FailingBackend"
    run_job()
    row.refresh_from_db()
    assert row.notified_at is None and row.notified_via == ""  # un-claimed
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    run_job()
    assert len(mail.outbox) == 1 and "unknown outcome" in mail.outbox[0].body


def test_a_stale_claim_of_a_dead_copier_is_sent_by_the_next(transactional_db, frozen):
    mx, _ = master_with_followers("ms")
    alert(mx, Kind.COPY_FAILED, "claimed then the copier died", T0)
    assert notify.claim(mx.pk, clock.now()) is not None  # never sent, never settled
    run_job()
    assert mail.outbox == []
    frozen.advance(notify.CLAIM_STALE + timedelta(seconds=1))
    run_job()
    assert len(mail.outbox) == 1


def test_no_secret_ever_reaches_an_email(transactional_db, frozen):
    mx, (x1, _) = master_with_followers("mk")
    api_key = "live-api-key-ZX81-very-secret-4242"
    account = BrokerAccountFactory(owner=x1.user, master=mx, client_id="SK0001", api_key=api_key)
    assert account.api_key().reveal() == api_key
    # A broker error that echoed credentials back into an alert's text.
    alert(mx, Kind.COPY_FAILED, f"refused: bad key {api_key}", T0, follower=x1)
    alert(mx, Kind.NEEDS_LOGIN, "session rejected: userSession=abcd1234efgh5678", T0)
    run_job()
    (email,) = mail.outbox
    for secret in (api_key, "abcd1234efgh5678"):
        assert secret not in email.body and secret not in email.subject
    assert "****4242" in email.body  # masked, still recognisable


def test_daily_loss_reached_alerts_once_per_follower_per_day_and_is_emailed(
    make_world,  # noqa: F811
):
    world = make_world({"max_daily_loss": Decimal("1000")}, {})
    losing, fine = world.followers
    world.master.user.email = "master@example.com"
    world.master.user.save(update_fields=["email"])
    DailyPnl.objects.create(
        account=account_of(losing),
        trading_day=clock.today_ist(),
        realised=Decimal("-1500"),
        as_of=clock.now(),
    )
    world.tick()
    world.place("INFY-EQ", "BUY", 1)
    world.tick()
    world.place("SBIN-EQ", "BUY", 1)
    world.tick()
    skipped = CopyTrade.objects.filter(follower=losing, reason_code="max_daily_loss")
    assert skipped.count() == 2
    (row,) = Alert.objects.filter(kind=Kind.DAILY_LOSS)
    assert row.follower_id == losing.pk and "-1500" in row.message
    assert not Alert.objects.filter(follower=fine).exists()
    # the copier's tick ran the digest job: the master was told, once
    row.refresh_from_db()
    assert row.notified_via == notify.VIA_EMAIL
    emails = [m for m in mail.outbox if m.to == ["master@example.com"]]
    assert len(emails) == 1 and "Daily-loss limit reached" in emails[0].body
