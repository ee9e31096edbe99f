"""Readiness: every follower that would not receive copies today, and why — on demand
(`python manage.py readiness`), by the copier once per trading day at READINESS_AT, and on the
master dashboard; the funds and push checks ask the sandbox over real sockets."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from copytrade.lib import clock
from tests.conftest import login
from tests.engine.conftest import account_of
from trading.brokers.aliceblue import budget as persisted_budget
from trading.brokers.aliceblue import contracts
from trading.engine.lifecycle import readiness
from trading.engine.runner import Copier
from trading.models import (
    AuditEvent,
    BrokerSession,
    DailyPnl,
    Instrument,
    ReadinessItem,
    ReadinessReport,
    ReadinessRequest,
)

pytestmark = pytest.mark.django_db(transaction=True)
Reason = ReadinessItem.Reason


def _contract_masters_loaded(day: date) -> None:
    """Every exchange's contract master counts as loaded on ``day`` (one row each)."""
    for n, exchange in enumerate(contracts.default_exchanges()):
        Instrument.objects.update_or_create(
            exchange=exchange,
            token=f"9{n}0001",
            defaults={
                "trading_symbol": f"TEST{n}",
                "symbol": f"TEST{n}",
                "tick_size": Decimal("0.05"),
                "refreshed_on": day,
            },
        )
    Instrument.objects.update(refreshed_on=day)


def _reasons(report: ReadinessReport) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for item in report.items.select_related("follower"):
        out.setdefault(item.follower.display_name, set()).add(item.reason)
    return out


@pytest.fixture
def crowd(make_world):  # type: ignore[no-untyped-def]
    """A master with one ready follower and one follower per reason."""
    world = make_world(
        {"display_name": "Ready"},
        {"display_name": "No login", "connect": False},
        {"display_name": "Paused", "is_paused": True},
        {"display_name": "Loss", "max_daily_loss": Decimal("1000")},
        {"display_name": "Broke", "funds": "0"},
        {"display_name": "No push", "push_enabled": False},
    )
    loss = next(f for f in world.followers if f.display_name == "Loss")
    DailyPnl.objects.create(
        account=account_of(loss),
        trading_day=clock.today_ist(),
        realised=Decimal("-1200"),
        unrealised=Decimal("-50"),
        as_of=clock.now(),
    )
    _contract_masters_loaded(clock.today_ist())
    return world


def test_the_command_lists_each_follower_with_its_reason_and_stores_the_report(crowd):
    out = StringIO()
    call_command("readiness", "--master", crowd.master.user.username, stdout=out)
    report = ReadinessReport.objects.get(master=crowd.master)
    assert report.source == ReadinessReport.Source.ON_DEMAND
    assert report.trading_day == clock.today_ist()
    assert _reasons(report) == {
        "No login": {Reason.NEEDS_LOGIN},
        "Paused": {Reason.PAUSED},
        "Loss": {Reason.DAILY_LOSS},
        "Broke": {Reason.SHORT_OF_FUNDS},
        "No push": {Reason.PUSH_NOT_ENABLED},
    }
    assert (report.followers_checked, report.followers_blocked) == (6, 5)
    assert report.note == ""
    text = out.getvalue()
    assert "5 of 6 followers would not receive" in text
    for line in ("No login  Needs today's login", "Broke     Short of funds"):
        assert line in text
    assert "Ready " not in text
    detail = report.items.get(reason=Reason.DAILY_LOSS).detail
    assert "-₹1,250.00" in detail and "₹1,000.00" in detail
    assert "signs in to AliceBlue" in report.items.get(reason=Reason.NEEDS_LOGIN).detail
    # the push check is remembered on the session (the dashboards show it)
    no_push = next(f for f in crowd.followers if f.display_name == "No push")
    assert BrokerSession.objects.get(account=account_of(no_push)).push_state == "not_enabled"


def test_missing_instrument_data_is_listed_for_every_follower(crowd):
    Instrument.objects.filter(exchange="MCX").update(
        refreshed_on=clock.today_ist() - timedelta(days=1)
    )
    call_command("readiness", stdout=StringIO())
    report = ReadinessReport.objects.get(master=crowd.master)
    reasons = _reasons(report)
    assert all(Reason.INSTRUMENT_DATA in found for found in reasons.values())
    assert reasons["Ready"] == {Reason.INSTRUMENT_DATA}
    assert "MCX" in report.items.filter(reason=Reason.INSTRUMENT_DATA).first().detail  # type: ignore[union-attr]


def test_funds_are_not_asked_for_when_the_request_budget_is_low(crowd, settings):
    broke = next(f for f in crowd.followers if f.display_name == "Broke")
    account = account_of(broke)
    left = persisted_budget.remaining(account.pk)
    persisted_budget.consume(account.pk, left - readiness.BUDGET_RESERVE, op="test")
    report = readiness.check(master=crowd.master)
    assert Reason.SHORT_OF_FUNDS not in _reasons(report).get("Broke", set())
    assert "Broke" in report.note and readiness.BUDGET_LOW in report.note
    assert persisted_budget.remaining(account.pk) == readiness.BUDGET_RESERVE  # untouched


def test_short_of_funds_follows_the_minimum_setting(crowd, settings):
    settings.READINESS_MIN_FUNDS = Decimal("2000000")  # above every sandbox account's funds
    report = readiness.check(master=crowd.master)
    short = {name for name, found in _reasons(report).items() if Reason.SHORT_OF_FUNDS in found}
    # every follower whose funds could be read (a ready session) is short now
    assert short == {"Ready", "Paused", "Loss", "Broke", "No push"}


def test_an_unknown_master_is_an_error():
    with pytest.raises(CommandError, match="No master"):
        call_command("readiness", "--master", "nobody", stdout=StringIO())


def test_the_copier_checks_once_per_trading_day_at_the_configured_time(crowd, sbx, settings):
    settings.TRADING_ROUND_THE_CLOCK = True
    today = clock.today_ist()
    settings.READINESS_AT = time(8, 45)

    async def run(at: datetime) -> list[int]:
        with clock.frozen(at):
            async with Copier(name="test-copier", config=crowd.config) as copier:
                await copier.tick()
                await readiness.readiness_before_open(copier)
                return list(
                    await copier.db(
                        lambda: list(
                            ReadinessReport.objects.filter(
                                source=ReadinessReport.Source.SCHEDULED
                            ).values_list("pk", flat=True)
                        )
                    )
                )

    early = datetime.combine(today, time(8, 30), tzinfo=clock.IST)
    assert asyncio.run(run(early)) == []  # before READINESS_AT
    on_time = datetime.combine(today, time(8, 46), tzinfo=clock.IST)
    (first,) = asyncio.run(run(on_time))
    assert asyncio.run(run(on_time + timedelta(minutes=5))) == [first]  # once a day
    report = ReadinessReport.objects.get(pk=first)
    assert report.trading_day == today
    assert _reasons(report)["Broke"] == {Reason.SHORT_OF_FUNDS}  # asked through the copier
    assert _reasons(report)["No push"] == {Reason.PUSH_NOT_ENABLED}
    assert "Ready" not in _reasons(report)


def test_the_master_dashboard_shows_the_latest_report(crowd, client):
    readiness.check(master=crowd.master)
    response = login(client, crowd.master.user).get(reverse("trading:master_dashboard"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "5 of 6 followers would not receive" in html
    for reason in (Reason.NEEDS_LOGIN, Reason.PAUSED, Reason.DAILY_LOSS, Reason.SHORT_OF_FUNDS):
        assert f'data-readiness-reason="{reason}"' in html
    assert "Short of funds" in html and "No login" in html


CHECK_URL = reverse("trading:master_readiness_check")


def test_check_now_asks_the_copier_which_runs_it_and_the_dashboard_shows_it(crowd, client):
    master_client = login(client, crowd.master.user)
    assert master_client.get(CHECK_URL).status_code == 405
    response = master_client.post(CHECK_URL)
    assert response.status_code == 302 and response["Location"] == reverse(
        "trading:master_dashboard"
    )
    waiting = ReadinessRequest.objects.get(master=crowd.master, done_at__isnull=True)
    assert AuditEvent.objects.filter(action="readiness.request", master=crowd.master).count() == 1
    # a second click adds nothing; the web process asked the broker nothing
    htmx = master_client.post(CHECK_URL, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 200 and "data-readiness-waiting" in htmx.content.decode()
    assert ReadinessRequest.objects.filter(master=crowd.master).count() == 1
    assert not ReadinessReport.objects.exists()
    page = master_client.get(reverse("trading:master_dashboard")).content.decode()
    assert "Check requested at" in page and 'id="readiness-check"' not in page
    crowd.tick()  # the copier's pass runs the waiting check
    waiting.refresh_from_db()
    assert waiting.done_at is not None and waiting.report is not None
    assert waiting.report.source == ReadinessReport.Source.ON_DEMAND
    assert _reasons(waiting.report)["Broke"] == {Reason.SHORT_OF_FUNDS}
    page = master_client.get(reverse("trading:master_dashboard")).content.decode()
    assert "5 of 6 followers would not receive" in page and 'id="readiness-check"' in page
