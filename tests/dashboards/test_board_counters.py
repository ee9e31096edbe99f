"""The trigger-maintained board counters (trading.board) against the copy trades themselves."""

from __future__ import annotations

import random

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import Follower
from tests.factories import CopyTradeFactory
from trading import board
from trading.models import CopyTrade, FollowerBoard
from trading.selectors import Stats, board_stats, stats_between

STATUSES = [s for s, _ in board.STATUS_COLUMNS]


def _board(follower: Follower) -> FollowerBoard | None:
    return FollowerBoard.objects.filter(follower=follower).first()


def _assert_counters_match(*followers: Follower) -> None:
    for follower in followers:
        expected = stats_between(CopyTrade.objects.filter(follower=follower))
        assert board_stats(_board(follower)) == expected


def test_triggers_are_installed_after_migrations(db):
    assert board.triggers_installed()


def test_insert_creates_board_and_bumps_version(follower_a):
    assert _board(follower_a) is None
    CopyTradeFactory(follower=follower_a)
    first = _board(follower_a)
    assert first is not None and first.total == 1 and first.pending == 1
    CopyTradeFactory(follower=follower_a, status="SKIPPED")
    second = _board(follower_a)
    assert second.version > first.version
    assert (second.total, second.pending, second.skipped) == (2, 1, 1)


def test_status_change_moves_the_count_and_bumps_version(follower_a):
    trade = CopyTradeFactory(follower=follower_a)
    before = _board(follower_a)
    # the copier's claim: a conditional UPDATE through the queryset, not save()
    assert CopyTrade.objects.filter(pk=trade.pk, status="PENDING").update(status="SENDING") == 1
    after = _board(follower_a)
    assert after.version > before.version
    assert (after.pending, after.sending, after.total) == (0, 1, 1)


def test_update_that_matches_no_row_changes_nothing(follower_a):
    trade = CopyTradeFactory(follower=follower_a, status="SENDING")
    before = _board(follower_a)
    assert CopyTrade.objects.filter(pk=trade.pk, status="PENDING").update(status="CANCELLED") == 0
    assert _board(follower_a).version == before.version


def test_one_follower_changes_never_touch_another(follower_a, follower_b):
    CopyTradeFactory(follower=follower_b)
    b_version = _board(follower_b).version
    CopyTradeFactory(follower=follower_a)
    CopyTrade.objects.filter(follower=follower_a).update(status="FAILED")
    assert _board(follower_b).version == b_version


def test_bulk_update_of_many_followers_keeps_every_count(follower_a, follower_b):
    for _ in range(5):
        CopyTradeFactory(follower=follower_a)
        CopyTradeFactory(follower=follower_b)
    CopyTrade.objects.filter(status="PENDING").update(status="EXPIRED")
    _assert_counters_match(follower_a, follower_b)
    assert _board(follower_a).expired == 5


def test_random_writes_keep_counters_equal_to_the_trades(follower_a, follower_b):
    rng = random.Random(20261127)
    followers = [follower_a, follower_b]
    trades = []
    for step in range(120):
        action = rng.random()
        if action < 0.4 or not trades:
            trades.append(
                CopyTradeFactory(follower=rng.choice(followers), status=rng.choice(STATUSES))
            )
        elif action < 0.8:
            trade = rng.choice(trades)
            CopyTrade.objects.filter(pk=trade.pk).update(status=rng.choice(STATUSES))
        elif action < 0.9:
            # a bulk change across followers
            status = rng.choice(STATUSES)
            CopyTrade.objects.filter(status=rng.choice(STATUSES)).update(status=status)
        else:
            trade = trades.pop(rng.randrange(len(trades)))
            CopyTrade.objects.filter(pk=trade.pk).delete()
        if step % 20 == 0:
            _assert_counters_match(*followers)
    _assert_counters_match(*followers)


def test_rebuild_recomputes_counters_and_bumps_version(follower_a):
    CopyTradeFactory(follower=follower_a, status="SUCCESS")
    FollowerBoard.objects.filter(follower=follower_a).update(success=99, total=99)
    version = _board(follower_a).version
    board.rebuild_boards()
    row = _board(follower_a)
    assert (row.total, row.success) == (1, 1)
    assert row.version > version


@pytest.mark.django_db(transaction=True)
def test_migrate_reinstalls_triggers_that_a_table_rebuild_dropped(follower_a):
    # SQLite's schema editor drops a table's triggers when it rebuilds the table for a later
    # migration; post_migrate must put them back.
    board.drop_triggers(connection)
    assert not board.triggers_installed()
    call_command("migrate", verbosity=0)
    assert board.triggers_installed()
    CopyTradeFactory(follower=follower_a)
    assert _board(follower_a).total == 1


def test_stats_pending_includes_sending():
    assert Stats.from_counts({"PENDING": 2, "SENDING": 3, "SUCCESS": 1}).pending == 5
