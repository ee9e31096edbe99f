"""Real copier processes for crash, soak and two-copier tests: `python manage.py copier`
against this test database (SQLite file or PostgreSQL) and the in-process sandbox server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from trading.models import CopierHeartbeat, CopyTrade

BASE_DIR = Path(__file__).resolve().parents[2]
Status = CopyTrade.Status
SETTLED = {"SUCCESS", "FAILED", "CANCELLED", "EXPIRED", "UNKNOWN", "SKIPPED"}


def database_url() -> str:
    """This test database as a DATABASE_URL another process can use."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


class CopierProcess:
    """`manage.py copier` in a subprocess; stderr kept in a temporary file for diagnosis."""

    def __init__(self, sbx: Any, *, name: str = "copier", crash_at: str = "", **env: Any) -> None:
        self.name = name
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix=f"copier-{name}-", suffix=".log", delete=False
        )
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "copytrade.settings",
            "DATABASE_URL": database_url(),
            "COPYTRADE_VAR_DIR": str(settings.VAR_DIR),
            "ALICEBLUE_BROKER": "sandbox",
            "ALICEBLUE_OPEN_API_URL": sbx.url,
            "ALICEBLUE_ANT_API_URL": sbx.url,
            "ALICEBLUE_LOGIN_URL": sbx.url + "/",
            "ALICEBLUE_CONTRACT_URL": sbx.contract_url,
            "ALICEBLUE_ORDER_WS_URL": sbx.order_ws_url("g3"),
            "ALICEBLUE_ANT_ORDER_WS_URL": sbx.order_ws_url("g2"),
            "ALICEBLUE_CONNECT_TIMEOUT_MS": "1000",
            "ALICEBLUE_READ_TIMEOUT_MS": "1500",
            "TRADING_ROUND_THE_CLOCK": "true",
            "COPIER_POLL_FAST_MS": "150",
            "COPIER_POLL_SLOW_MS": "300",
            "COPIER_AMBIGUOUS_LOOKUP_MS": "1500",
            "COPIER_PNL_REFRESH_SECONDS": "0",
            "COPIER_LOAD_CONTRACTS": "false",
            "COPIER_HEARTBEAT_SECONDS": "1",
            "LOG_LEVEL": "WARNING",
            "COPIER_CRASH_AT": crash_at,
        }
        environment.update({k: str(v) for k, v in env.items()})
        self.proc = subprocess.Popen(
            [sys.executable, str(BASE_DIR / "manage.py"), "copier", "--name", name],
            cwd=BASE_DIR,
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until this process has written its heartbeat."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"copier {self.name} exited early:\n{self.output()}")
            beat = CopierHeartbeat.objects.filter(name=self.name, pid=self.proc.pid).first()
            if beat is not None and beat.state.get("masters"):
                return
            time.sleep(0.05)
        raise AssertionError(f"copier {self.name} did not start:\n{self.output()}")

    def wait_exit(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"copier {self.name} did not exit:\n{self.output()}") from None

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        self.kill()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def wait_settled(timeout: float = 30.0, *, expect: int | None = None) -> list[CopyTrade]:
    """Until every copy trade is settled (and, with ``expect``, that many exist)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = list(CopyTrade.objects.order_by("pk"))
        enough = expect is None or len(rows) >= expect
        if enough and rows and all(r.status in SETTLED for r in rows):
            return rows
        if time.monotonic() > deadline:
            states = Counter(r.status for r in rows)
            raise AssertionError(f"copy trades not settled in {timeout}s: {dict(states)}")
        time.sleep(0.1)


def assert_exactly_once(world: Any, rows: list[CopyTrade] | None = None) -> Counter[str]:
    """Every copy's tag is in its follower's book at most once, and exactly once iff the copy
    says the broker has it (SUCCESS/FAILED-after-ack); no order without a copy trade."""
    rows = rows if rows is not None else list(CopyTrade.objects.order_by("pk"))
    by_follower: dict[int, list[CopyTrade]] = {}
    for row in rows:
        by_follower.setdefault(row.follower_id, []).append(row)
    statuses: Counter[str] = Counter()
    for follower in world.followers:
        book = world.orders_of(follower)
        tags = Counter(o["tag"] for o in book)
        mine = {r.tag: r for r in by_follower.get(follower.pk, [])}
        assert set(tags) <= set(mine), f"orders without a copy trade: {set(tags) - set(mine)}"
        for tag, row in mine.items():
            count = tags.get(tag, 0)
            statuses[row.status] += 1
            assert count <= 1, f"{tag} sent {count} times"
            if row.status == Status.SUCCESS:
                assert count == 1, f"{tag} is SUCCESS but not in the book"
                order = next(o for o in book if o["tag"] == tag)
                assert order["order_no"] == row.broker_order_id
            elif row.status in (Status.PENDING, Status.SKIPPED, Status.EXPIRED):
                assert count == 0, f"{tag} is {row.status} but in the book"
    return statuses
