"""The copier's one database thread: urgent work (detection → decision → claim) goes ahead of
what is queued, results and errors reach their awaiters, and a closed thread refuses work
instead of leaving it waiting for ever."""

import asyncio
import threading

import pytest

from trading.engine.runner import Db


def test_urgent_calls_go_ahead_of_queued_ones_and_errors_reach_the_caller() -> None:
    db = Db()
    gate = threading.Event()
    order: list[str] = []

    def blocker() -> None:
        gate.wait(timeout=10)

    def record(name: str) -> str:
        order.append(name)
        return name

    def fail() -> None:
        raise ValueError("boom")

    async def scenario() -> list[str]:
        first = asyncio.ensure_future(db(blocker))  # holds the thread
        await asyncio.sleep(0.05)
        normal = [asyncio.ensure_future(db(record, f"normal-{i}")) for i in range(3)]
        await asyncio.sleep(0.01)
        urgent = asyncio.ensure_future(db.urgent(record, "urgent"))
        await asyncio.sleep(0.01)
        gate.set()
        await first
        results = await asyncio.gather(*normal, urgent)
        with pytest.raises(ValueError, match="boom"):
            await db(fail)
        return list(results)

    try:
        results = asyncio.run(scenario())
    finally:
        db.close()
    assert results == ["normal-0", "normal-1", "normal-2", "urgent"]
    assert order == ["urgent", "normal-0", "normal-1", "normal-2"]


def test_a_closed_thread_refuses_work() -> None:
    db = Db()
    db.close()

    async def scenario() -> None:
        await asyncio.wait_for(db(lambda: 1), timeout=5)

    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(scenario())
