"""Seeded soak: real copier processes killed at random (named kill points and SIGKILL at random
moments), one or two copiers at once, against a sandbox that times out after accepting
orders, answers 5xx and shows orders late. Whatever happens, no follower ever gets two
orders for one leg, every SUCCESS is in the follower's book, and every row settles.

CI runs a bounded version (fixed seed, a few rounds). The long one:

    COPYTRADE_SOAK_ROUNDS=100 COPYTRADE_SOAK_SEED=7 \\
        DATABASE_URL=postgres://postgres@127.0.0.1:5432/ct_soak \\
        .venv/bin/python -m pytest tests/engine/test_soak.py -p no:cacheprovider
"""

from __future__ import annotations

import os
import random
import time
from decimal import Decimal

from tests.engine.processes import CopierProcess, assert_exactly_once, wait_settled
from trading.engine.faults import POINTS
from trading.models import CopyTrade

ROUNDS = int(os.environ.get("COPYTRADE_SOAK_ROUNDS", "3"))
SEED = int(os.environ.get("COPYTRADE_SOAK_SEED", "20261127"))
Status = CopyTrade.Status


def test_soak_random_kills_faults_and_two_copiers(make_world):
    rng = random.Random(SEED)
    world = make_world({}, {"lot_multiplier": Decimal("2")}, {"lot_multiplier": Decimal("0.5")})
    world.tick()  # the day's baseline
    symbols = ("INFY-EQ", "SBIN-EQ")
    placed = 0
    for _round in range(ROUNDS):
        for follower in world.followers:
            world.sbx.set_faults(
                world.client_of(follower),
                order_timeout_rate=rng.choice([0.0, 0.0, 0.3]),
                timeout_hold_ms=2000,
                error_rate=rng.choice([0.0, 0.0, 0.15]),
                error_status=rng.choice([500, 502, 503]),
                book_delay_ms=rng.choice([0, 0, 1200]),
            )
        crash = rng.choice([*POINTS, "", ""])
        copiers = [CopierProcess(world.sbx, name="copier", crash_at=crash)]
        if rng.random() < 0.5:
            copiers.append(CopierProcess(world.sbx, name="copier-b"))
        try:
            for copier in copiers:
                copier.wait_ready()
            for _ in range(rng.randint(1, 3)):
                world.place(rng.choice(symbols), rng.choice(["BUY", "SELL"]), rng.randint(1, 6))
                placed += 1
                time.sleep(rng.uniform(0, 0.3))
            time.sleep(rng.uniform(0.0, 1.5))
            for copier in copiers:
                if rng.random() < 0.5:
                    copier.kill()  # SIGKILL at a random moment
        finally:
            for copier in copiers:
                copier.stop()
        assert_exactly_once(world)  # holds at every moment, not only at the end
    # a clean copier settles everything: sends what is fresh, expires what is stale,
    # resolves what was left SENDING by its tag, finds late orders
    for follower in world.followers:
        world.sbx.clear_faults(world.client_of(follower))
    final = CopierProcess(world.sbx, name="copier")
    try:
        final.wait_ready()
        rows = wait_settled(timeout=60)
        time.sleep(1.5)  # late-appearing orders turn UNKNOWN into SUCCESS
        statuses = assert_exactly_once(world)
        assert final.terminate() == 0, final.output()
    finally:
        final.stop()
    assert placed >= ROUNDS and rows
    assert set(statuses) <= {"SUCCESS", "FAILED", "EXPIRED", "UNKNOWN", "SKIPPED"}
