"""Detection with the copier's real loops: the order push is the fast path; a push that drops
or goes silent loses no master order (the budgeted poll recovers it); every event records its
source, the broker's time and our receive time."""

from __future__ import annotations

import asyncio
import time

from tests.engine.helpers import until
from trading.models import CopyTrade, MasterFeed, MasterOrderEvent

Status = CopyTrade.Status


def _copied(n):
    def check():
        rows = list(CopyTrade.objects.values_list("status", flat=True))
        return len(rows) >= n and all(s == Status.SUCCESS for s in rows)

    return check


def _connected(world):
    return lambda: world.sbx.sockets(world.master_client) > 0


def test_the_push_detects_an_order_without_waiting_for_a_poll(make_world):
    world = make_world({})
    world.tick()

    async def body(copier):
        await until(_connected(world))
        await asyncio.sleep(0.3)  # the poll on connect has run; the next is a minute away
        started = time.monotonic()
        await asyncio.to_thread(world.place, "INFY-EQ", "BUY", 2)
        await until(_copied(1), timeout=5)
        return time.monotonic() - started

    elapsed = world.run(body, poll_fast=60, poll_slow=60)
    assert elapsed < 3
    accepted = MasterOrderEvent.objects.get(kind="accepted")
    assert accepted.source == "push"
    assert accepted.broker_time is not None and accepted.received_at >= accepted.broker_time
    copy = CopyTrade.objects.get()
    assert copy.received_at == accepted.received_at
    assert copy.master_accepted_at <= copy.received_at <= copy.decided_at <= copy.sent_at
    assert copy.sent_at <= copy.acknowledged_at
    assert list(copy.transitions.values_list("to_status", flat=True)) == [
        "PENDING",
        "SENDING",
        "SUCCESS",
    ]


def test_a_silent_push_loses_no_order(make_world):
    world = make_world({})
    world.tick()
    world.sbx.set_faults(world.master_client, push_silent=True)

    async def body(copier):
        await until(_connected(world))
        await asyncio.to_thread(world.place, "INFY-EQ", "BUY", 2)
        await until(_copied(1), timeout=8)

    world.run(body, poll_fast=0.2, poll_slow=60, push_silent=0.5)
    assert MasterOrderEvent.objects.get(kind="accepted").source == "poll"
    assert world.orders_of(world.followers[0])[0]["quantity"] == 2


def test_a_dropped_push_loses_no_order(make_world):
    world = make_world({})
    world.tick()

    async def body(copier):
        await until(_connected(world))
        # the socket drops and the push stays disabled: only the poll can find the order
        await asyncio.to_thread(world.sbx.set_faults, world.master_client, push_disabled=True)
        await asyncio.to_thread(world.sbx.drop_websockets, world.master_client)
        await asyncio.to_thread(world.place, "INFY-EQ", "BUY", 3)
        await until(_copied(1), timeout=8)
        await asyncio.to_thread(world.sbx.clear_faults, world.master_client)

    world.run(body, poll_fast=0.2, poll_slow=60)
    assert MasterOrderEvent.objects.get(kind="accepted").source == "poll"
    assert MasterFeed.objects.get(master=world.master).last_poll_at is not None


def test_push_and_poll_together_record_each_event_once(make_world):
    world = make_world({})
    world.tick()

    async def body(copier):
        await until(_connected(world))
        for n in range(3):
            await asyncio.to_thread(world.place, "INFY-EQ", "BUY", 1 + n)
        await until(_copied(3), timeout=8)
        await asyncio.sleep(0.5)  # more polls see the same orders

    world.run(body, poll_fast=0.1, poll_slow=0.1)
    kinds = list(MasterOrderEvent.objects.values_list("kind", flat=True))
    assert sorted(kinds) == ["accepted"] * 3 + ["filled"] * 3
    assert len(world.orders_of(world.followers[0])) == 3
