"""The trigger-maintained board counters (trading.board) against the copy trades themselves."""

from __future__ import annotations

import random

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import Follower
from tests.factories import CopyTradeFactory, modified_then_cancelled
from trading import board
from trading.models import CopyTrade, FollowerBoard
from trading.selectors import (
    Stats,
    board_state,
    board_stats,
    stats_between,
    today_stats_for_follower,
)

STATUSES = [s for s, _ in board.STATUS_COLUMNS]
ACTIONS = CopyTrade.Action.values


def _board(follower: Follower) -> FollowerBoard | None:
    return FollowerBoard.objects.filter(follower=follower).first()


def _assert_counters_match(*followers: Follower) -> None:
    for follower in followers:
        trades = CopyTrade.objects.filter(follower=follower)
        row = _board(follower)
        assert board_stats(row) == stats_between(trades)
        # the statistics count copied orders (place rows); `total` every row the board lists
        assert board_stats(row).total == trades.filter(action="place").count()
        assert (row.total if row else 0) == trades.count()


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
                CopyTradeFactory(
                    follower=rng.choice(followers),
                    status=rng.choice(STATUSES),
                    action=rng.choice(ACTIONS),
                )
            )
        elif action < 0.75:
            trade = rng.choice(trades)
            CopyTrade.objects.filter(pk=trade.pk).update(status=rng.choice(STATUSES))
        elif action < 0.8:
            # a change of action (no writer does this today; the counters must follow anyway)
            trade = rng.choice(trades)
            CopyTrade.objects.filter(pk=trade.pk).update(
                action=rng.choice(ACTIONS), status=rng.choice(STATUSES)
            )
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


# --- modify and cancel rows: changes of a copied order, not more copied orders -----------------
def test_modified_then_cancelled_order_counts_once_overall_and_today(follower_a, follower_b):
    modified_then_cancelled(follower_a, status="SUCCESS")
    CopyTradeFactory(follower=follower_a, status="FAILED")
    modified_then_cancelled(follower_b, status="SUCCESS")  # another follower's, not counted
    row = _board(follower_a)
    overall = board_stats(row)
    assert (overall.total, overall.successful, overall.failed) == (2, 1, 1)
    assert row.total == 4  # the board still lists the modify and cancel rows
    state = board_state(follower_a.user_id)
    assert state is not None and state.overall == overall and state.rows == 4
    today = today_stats_for_follower(follower_a.id)
    assert (today.total, today.successful, today.failed) == (2, 1, 1)
    assert stats_between(CopyTrade.objects.filter(follower=follower_a)) == overall


def test_freeze_quantity_legs_still_count_as_copied_orders(follower_a):
    first = CopyTradeFactory(follower=follower_a, status="SUCCESS")
    CopyTradeFactory(follower=follower_a, event=first.event, leg=1, status="SUCCESS")
    assert board_stats(_board(follower_a)).successful == 2
    assert today_stats_for_follower(follower_a.id).successful == 2


def test_modify_row_insert_and_status_change_still_bump_version(follower_a):
    place = CopyTradeFactory(follower=follower_a, status="SUCCESS")
    before = _board(follower_a)
    modify = CopyTradeFactory(follower=follower_a, action="modify", linked=place)
    inserted = _board(follower_a)
    assert inserted.version > before.version
    assert CopyTrade.objects.filter(pk=modify.pk, status="PENDING").update(status="SENDING") == 1
    claimed = _board(follower_a)
    assert claimed.version > inserted.version
    CopyTrade.objects.filter(pk=modify.pk).update(status="SUCCESS")
    settled = _board(follower_a)
    assert settled.version > claimed.version
    # the statistics never moved: one copied order, successful
    for row in (inserted, claimed, settled):
        assert board_stats(row) == board_stats(before) == Stats(total=1, successful=1)
    CopyTrade.objects.filter(pk=modify.pk).delete()
    assert _board(follower_a).version > settled.version
    assert board_stats(_board(follower_a)) == Stats(total=1, successful=1)


def test_install_triggers_twice_keeps_one_set_that_counts_copied_orders(follower_a):
    board.install_triggers()
    board.install_triggers()
    assert board.triggers_installed()
    modified_then_cancelled(follower_a)
    row = _board(follower_a)
    assert (row.total, row.success) == (3, 1)


def test_rebuild_counts_copied_orders(follower_a):
    modified_then_cancelled(follower_a, status="SUCCESS")
    FollowerBoard.objects.filter(follower=follower_a).update(success=3, total=3)
    board.rebuild_boards()
    row = _board(follower_a)
    assert (row.total, row.success) == (3, 1)


def _make_insert_trigger_stale() -> None:
    """An insert trigger of the same name but another definition (as an older release left
    it): only a drop-and-create replaces it."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER trading_copytrade_board_ai")
            cursor.execute(
                "CREATE TRIGGER trading_copytrade_board_ai AFTER INSERT ON trading_copytrade "
                "BEGIN SELECT 1; END"
            )
        else:
            cursor.execute(
                "CREATE OR REPLACE FUNCTION trading_copytrade_board_ai_fn() RETURNS trigger "
                "LANGUAGE plpgsql AS $fn$ BEGIN RETURN NULL; END $fn$"
            )


@pytest.mark.django_db(transaction=True)
def test_migration_0008_recounts_boards_that_counted_every_row(follower_a, follower_b):
    # A board written by the old triggers: a modified-then-cancelled order as three successes.
    modified_then_cancelled(follower_a, status="SUCCESS")
    CopyTradeFactory(follower=follower_b, status="FAILED")
    FollowerBoard.objects.filter(follower=follower_a).update(success=3, total=3)
    version = _board(follower_a).version
    _make_insert_trigger_stale()
    CopyTradeFactory(follower=follower_b, status="FAILED")  # not counted by the stale trigger
    assert board_stats(_board(follower_b)).failed == 1
    call_command("migrate", "trading", "0007", verbosity=0)
    call_command("migrate", "trading", verbosity=0)
    row = _board(follower_a)
    assert (row.total, row.success) == (3, 1)
    assert row.version > version  # open boards re-render with the corrected numbers
    assert board_stats(_board(follower_b)) == Stats(total=2, failed=2)
    CopyTradeFactory(follower=follower_b, status="FAILED")  # the new insert trigger counts
    assert board_stats(_board(follower_b)) == Stats(total=3, failed=3)


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
