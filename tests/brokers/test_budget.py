"""The persisted per-account request budget: one shared allowance per 15-minute window,
consumed by conditional UPDATEs, exact under concurrent callers (threads, real database)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from trading.brokers.aliceblue import budget
from trading.brokers.aliceblue.errors import BudgetExhausted
from trading.models import RequestBudget

T0 = datetime(2026, 3, 3, 4, 37, 12, tzinfo=UTC)  # 10:07:12 IST


def test_window_start_is_the_quarter_hour_in_ist_and_utc():
    assert budget.window_start(T0) == datetime(2026, 3, 3, 4, 30, tzinfo=UTC)
    assert budget.window_start(T0 + timedelta(minutes=8)) == datetime(2026, 3, 3, 4, 45, tzinfo=UTC)
    with pytest.raises(ValueError):
        budget.window_start(datetime(2026, 3, 3, 4, 37))


def test_consume_counts_and_refuses_past_the_limit(master_x, settings):
    settings.ALICEBLUE_REQUEST_BUDGET = 3
    account = master_x.broker_accounts.get()
    assert budget.consume(account.pk, now=T0) == 2
    assert budget.consume(account.pk, 2, now=T0) == 0
    with pytest.raises(BudgetExhausted) as caught:
        budget.consume(account.pk, op="order_book", now=T0)
    assert caught.value.retry_at == datetime(2026, 3, 3, 4, 45, tzinfo=UTC)
    assert RequestBudget.objects.get(account=account).used == 3
    # the next window starts afresh
    assert budget.consume(account.pk, now=T0 + timedelta(minutes=8)) == 2


def test_budgets_are_per_account(master_x, follower_a, settings):
    settings.ALICEBLUE_REQUEST_BUDGET = 1
    budget.consume(master_x.broker_accounts.get(owner=master_x.user).pk, now=T0)
    budget.consume(follower_a.user.broker_account.pk, now=T0)
    with pytest.raises(BudgetExhausted):
        budget.consume(follower_a.user.broker_account.pk, now=T0)


def test_old_windows_are_pruned(master_x):
    account = master_x.broker_accounts.get()
    budget.consume(account.pk, now=T0 - timedelta(days=3))
    budget.consume(account.pk, now=T0)
    assert RequestBudget.objects.filter(account=account).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_callers_never_overspend(settings):
    from tests.factories import BrokerAccountFactory, MasterFactory

    settings.ALICEBLUE_REQUEST_BUDGET = 50
    master = MasterFactory()
    account = BrokerAccountFactory(owner=master.user, master=master)
    granted = []
    refused = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def worker() -> None:
        start.wait()
        try:
            for _ in range(15):
                try:
                    budget.consume(account.pk, now=T0)
                    outcome = granted
                except BudgetExhausted:
                    outcome = refused
                with lock:
                    outcome.append(1)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(granted) == 50
    assert len(refused) == 6 * 15 - 50
    assert RequestBudget.objects.get(account=account).used == 50
