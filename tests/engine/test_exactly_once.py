"""Exactly once, with real copier processes against the sandbox: a copier killed at each named
point (after the rows are written, after the claim, after sending, after the acknowledgement)
and a restart never give a follower two orders for one leg; the restart settles every row.
Also: two copiers at once, an ambiguous send whose order never appears, a late-appearing
order, stale entries after a restart, and the sync send path of one copy trade id."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from copytrade.lib import clock
from tests.engine.processes import CopierProcess, assert_exactly_once, wait_settled
from trading.engine import sender
from trading.engine.faults import CRASH_EXIT_CODE
from trading.engine.reasons import Reason
from trading.models import Alert, CopyTrade, MasterOrderEvent

Status = CopyTrade.Status

#: What a restart makes of a copy whose copier died at each point.
AFTER_RESTART = {
    "after_rows": {Status.SUCCESS},  # PENDING, fresh: sent by the restart
    "after_claim": {Status.UNKNOWN},  # SENDING, never sent: the tag never appears
    "after_send": {Status.SUCCESS, Status.UNKNOWN},  # found by tag (or never left)
    "after_ack": {Status.SUCCESS},
}


@pytest.mark.parametrize("point", list(AFTER_RESTART))
def test_killed_at_each_point_a_restart_never_sends_twice(make_world, point):
    world = make_world({}, {"lot_multiplier": Decimal("2")})
    world.tick()  # the day's baseline
    first = CopierProcess(world.sbx, name="copier", crash_at=point)
    second = None
    try:
        first.wait_ready()
        world.place("INFY-EQ", "BUY", 3)
        assert first.wait_exit(timeout=30) == CRASH_EXIT_CODE, first.output()
        second = CopierProcess(world.sbx, name="copier")
        second.wait_ready()
        rows = wait_settled(timeout=30, expect=2)
        statuses = assert_exactly_once(world, rows)
        assert set(statuses) <= AFTER_RESTART[point], (statuses, second.output())
        if point == "after_claim":
            assert Alert.objects.filter(kind="unknown_order").count() == 2
            assert all(world.orders_of(f) == [] for f in world.followers)
        if point in ("after_rows", "after_ack"):
            assert [len(world.orders_of(f)) for f in world.followers] == [1, 1]
        assert second.terminate() == 0
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_two_copiers_at_once_never_double_send(make_world):
    world = make_world({}, {"lot_multiplier": Decimal("2")}, {"lot_multiplier": Decimal("0.5")})
    world.tick()
    copiers = [CopierProcess(world.sbx, name=f"copier-{n}") for n in (1, 2)]
    try:
        for copier in copiers:
            copier.wait_ready()
        for n in range(4):
            world.place(("INFY-EQ", "SBIN-EQ")[n % 2], "BUY", 2 + n)
            time.sleep(0.05)
        rows = wait_settled(timeout=40, expect=12)
        statuses = assert_exactly_once(world, rows)
        assert statuses == {Status.SUCCESS: 12}
        assert MasterOrderEvent.objects.filter(kind="accepted").count() == 4
        # both copiers watched the master: each event was decided once, each row claimed once
        claimers = {row.claimed_by.split("/")[0].split(".")[0] for row in rows}
        assert claimers <= {"copier-1", "copier-2"}
        assert all(row.transitions.filter(to_status="SENDING").count() == 1 for row in rows)
        for copier in copiers:
            assert copier.terminate() == 0, copier.output()
    finally:
        for copier in copiers:
            copier.stop()


def test_an_ambiguous_send_whose_order_never_appears_is_unknown_and_never_resent(make_world):
    world = make_world({})
    (follower,) = world.followers
    world.tick()
    # the broker takes the order but never answers; and the order never shows in the book
    world.sbx.set_faults(
        world.client_of(follower), order_timeout_rate=1.0, timeout_hold_ms=2500,
        book_delay_ms=60000,
    )  # fmt: skip
    world.place("INFY-EQ", "BUY", 2)
    world.tick()
    (copy,) = world.copies(follower)
    assert copy.status == Status.UNKNOWN and copy.reason_code == Reason.NOT_FOUND
    assert copy.tag in copy.reason
    alert = Alert.objects.get(copy_trade=copy)
    assert alert.kind == "unknown_order" and alert.resolved_at is None
    world.tick(2)  # nothing resends it
    assert len(world.orders_of(follower)) == 1  # the broker has it; we sent it exactly once


def test_a_late_appearing_order_turns_unknown_into_success(make_world):
    world = make_world({})
    (follower,) = world.followers
    world.tick()
    world.sbx.set_faults(
        world.client_of(follower), order_timeout_rate=1.0, timeout_hold_ms=2500,
        book_delay_ms=5000,
    )  # fmt: skip
    world.place("INFY-EQ", "BUY", 2)
    world.tick()
    (copy,) = world.copies(follower)
    assert copy.status == Status.UNKNOWN
    world.sbx.clear_faults(world.client_of(follower))
    time.sleep(2.0)  # the order shows in the follower's book now
    world.tick()
    copy.refresh_from_db()
    assert copy.status == Status.SUCCESS and copy.broker_order_id
    assert Alert.objects.get(copy_trade=copy).resolved_at is not None
    assert assert_exactly_once(world) == {Status.SUCCESS: 1}


def test_an_ambiguous_send_found_by_tag_is_success(make_world):
    world = make_world({})
    (follower,) = world.followers
    world.tick()
    world.sbx.set_faults(world.client_of(follower), order_timeout_rate=1.0, timeout_hold_ms=2500)
    world.place("INFY-EQ", "BUY", 2)
    world.tick()
    (copy,) = world.copies(follower)
    assert copy.status == Status.SUCCESS and "found by tag" in copy.reason
    assert assert_exactly_once(world) == {Status.SUCCESS: 1}


def test_stale_entries_expire_after_a_restart(make_world, settings):
    world = make_world({})
    (follower,) = world.followers
    settings.COPIER_STALENESS_SECONDS = 2
    world.tick()
    copier = CopierProcess(world.sbx, name="copier", crash_at="after_rows")
    try:
        copier.wait_ready()
        world.place("INFY-EQ", "BUY", 2)
        assert copier.wait_exit() == CRASH_EXIT_CODE
    finally:
        copier.stop()
    (copy,) = world.copies(follower)
    assert copy.status == Status.PENDING
    time.sleep(2.2)
    world.tick()  # the restart finds it past the staleness window
    copy.refresh_from_db()
    assert copy.status == Status.EXPIRED and copy.reason_code == Reason.STALE
    assert world.orders_of(follower) == []


def test_send_copy_trade_is_a_plain_function_of_an_id(make_world):
    world = make_world({}, {})
    alice, bob = world.followers
    world.tick()
    world.place("INFY-EQ", "BUY", 2)
    # decide only: record the master's order without the copier sending anything
    from trading.brokers import sessions
    from trading.brokers.aliceblue.client import AliceBlueClient
    from trading.engine import decide
    from trading.models import BrokerAccount

    master_account = BrokerAccount.objects.get(owner=world.master.user)
    with AliceBlueClient(sessions.session_for(account=master_account)) as broker:
        rows = broker.order_book()
    recorded = decide.record_rows(
        master_id=world.master.pk, rows=rows, source="poll", received_at=clock.now()
    )
    assert len(recorded.pending_ids) == 2
    for copy_id in recorded.pending_ids:
        assert sender.send_copy_trade(copy_id) == Status.SUCCESS
        # a second call (another worker, a retry) finds it claimed and sends nothing
        assert sender.send_copy_trade(copy_id) == Status.SUCCESS
    assert [len(world.orders_of(f)) for f in (alice, bob)] == [1, 1]
    assert assert_exactly_once(world) == {Status.SUCCESS: 2}
