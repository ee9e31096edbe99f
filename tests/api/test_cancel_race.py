"""A person's cancel and the copier's claim race on real connections: exactly one wins, and
the loser changes nothing (SQLite serialises the writers; PostgreSQL re-checks the WHERE)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from tests.factories import CopyTradeFactory
from trading import services
from trading.models import CopyTrade, CopyTradeTransition


def _claim(trade_id: int) -> int:
    return CopyTrade.objects.filter(pk=trade_id, status="PENDING").update(status="SENDING")


@pytest.mark.django_db(transaction=True)
def test_cancel_and_claim_never_both_win(follower_a):
    trades = [CopyTradeFactory(follower=follower_a) for _ in range(20)]
    results: dict[int, dict[str, object]] = {t.pk: {} for t in trades}

    def claimer(trade_id: int, barrier: threading.Barrier) -> None:
        try:
            barrier.wait()
            results[trade_id]["claimed"] = _claim(trade_id) == 1
        finally:
            connection.close()

    def canceller(trade_id: int, barrier: threading.Barrier) -> None:
        try:
            barrier.wait()
            try:
                services.cancel_copy_trade(copy_trade_id=trade_id, actor=follower_a.user)
                results[trade_id]["cancelled"] = True
            except services.CopyTradeNotPending:
                results[trade_id]["cancelled"] = False
        finally:
            connection.close()

    for index, trade in enumerate(trades):
        barrier = threading.Barrier(2)
        order = [claimer, canceller] if index % 2 else [canceller, claimer]
        threads = [threading.Thread(target=fn, args=(trade.pk, barrier)) for fn in order]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    for trade in trades:
        outcome = results[trade.pk]
        assert outcome["claimed"] != outcome["cancelled"], outcome
        trade.refresh_from_db()
        cancelled_rows = CopyTradeTransition.objects.filter(
            copy_trade=trade, to_status="CANCELLED"
        ).count()
        if outcome["cancelled"]:
            assert trade.status == "CANCELLED" and cancelled_rows == 1
        else:
            assert trade.status == "SENDING" and cancelled_rows == 0
