"""The overridable clock."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from copytrade.lib import clock
from copytrade.lib.clock import IST


def test_now_is_aware_and_current():
    before = datetime.now(UTC)
    value = clock.now()
    after = datetime.now(UTC)
    assert value.tzinfo is not None
    assert before <= value <= after


def test_today_ist_uses_the_indian_date():
    with clock.frozen(datetime(2026, 3, 2, 19, 0, tzinfo=UTC)):  # 00:30 IST on the 3rd
        assert clock.today_ist() == date(2026, 3, 3)
        assert clock.now_ist() == datetime(2026, 3, 3, 0, 30, tzinfo=IST)


def test_frozen_clock_moves_only_when_told():
    start = datetime(2026, 3, 2, 10, 0, tzinfo=IST)
    with clock.frozen(start) as fake:
        mono = clock.monotonic()
        time.sleep(0.002)
        assert clock.now() == start
        assert clock.monotonic() == mono
        fake.advance(30)
        assert clock.now() == start + timedelta(seconds=30)
        assert clock.monotonic() == mono + 30
        fake.advance(timedelta(minutes=1))
        assert clock.now() == start + timedelta(seconds=90)
        fake.set(start + timedelta(hours=1))
        assert clock.now() == start + timedelta(hours=1)
        assert clock.monotonic() == mono + 3600


def test_frozen_clock_never_goes_backwards():
    start = datetime(2026, 3, 2, 10, 0, tzinfo=IST)
    with clock.frozen(start) as fake:
        with pytest.raises(ValueError):
            fake.advance(-1)
        with pytest.raises(ValueError):
            fake.set(start - timedelta(seconds=1))


def test_frozen_refuses_naive_times():
    with pytest.raises(ValueError, match="aware"), clock.frozen(datetime(2026, 3, 2, 10, 0)):
        pass


def test_nesting_restores_the_outer_clock_and_then_the_real_one():
    outer = datetime(2026, 3, 2, 10, 0, tzinfo=IST)
    inner = datetime(2027, 1, 1, 10, 0, tzinfo=IST)
    with clock.frozen(outer):
        with clock.frozen(inner):
            assert clock.now() == inner
        assert clock.now() == outer
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_restored_after_an_exception():
    with pytest.raises(RuntimeError), clock.frozen(datetime(2026, 3, 2, 10, 0, tzinfo=IST)):
        raise RuntimeError("boom")
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_other_threads_see_the_frozen_clock():
    at = datetime(2026, 3, 2, 10, 0, tzinfo=IST)
    seen = []
    with clock.frozen(at):
        worker = threading.Thread(target=lambda: seen.append(clock.now()))
        worker.start()
        worker.join()
    assert seen == [at]
