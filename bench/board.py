"""Benchmark: the follower board's 5 s refresh under load (issue 6). Prints one JSON object.

    .venv/bin/python bench/board.py [--trades 100000] [--duration 30] [--connections 32]

What it does, all on this machine (loopback only, bounded in time):
1. a fresh SQLite database in a temporary directory, migrated; one master, one follower
   owning all the copy trades (spread over the past year, so "today" holds a few hundred);
2. an authenticated session for the follower, created through Django's session store;
3. gunicorn with 3 sync workers (DEBUG off, no access log), the copier idle (not started);
4. `wrk -c32 -d30s` on the board's refresh (`GET /board/?page=1&since=TOKEN`, `HX-Request`,
   the session cookie): "unchanged" sends the version the board shows (204), "changed" a
   stale one (the board partial is rendered);
5. queries per request counted in-process with Django's test client on the same database.

Needs `wrk` (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _django(env_dir: Path) -> None:
    os.environ["COPYTRADE_VAR_DIR"] = str(env_dir)
    os.environ["DEBUG"] = "false"
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "copytrade.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()


def _seed(trades: int) -> tuple[str, int]:
    """Create the follower and its trades; return (session cookie value, follower user id)."""
    from datetime import timedelta
    from decimal import Decimal

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import BrokerAccount, Follower, Master, User
    from trading.models import CopyTrade, MasterOrder, MasterOrderEvent

    master_user = User.objects.create_user("bench_master", password=None, role="master")
    master = Master.objects.create(user=master_user)
    user = User.objects.create_user("bench_follower", password=None, role="follower")
    follower = Follower.objects.create(
        master=master,
        user=user,
        display_name="Bench follower",
        lot_multiplier=Decimal("2"),
        max_quantity=1000,
        max_order_value=Decimal("1000000"),
        max_daily_loss=Decimal("50000"),
        allowed_product_types=["MIS", "CNC", "NRML"],
    )
    account = BrokerAccount(owner=user, master=master, client_id="BENCH1")
    account.set_api_key("bench-api-key-0123456789")
    account.save()

    now = timezone.now()
    statuses = ["SUCCESS"] * 14 + ["FAILED", "SKIPPED", "EXPIRED", "CANCELLED", "PENDING"]
    symbols = ["INFY-EQ", "TCS-EQ", "SBIN-EQ", "RELIANCE-EQ", "NIFTY26DECFUT"]
    batch = 5000
    span = timedelta(days=365).total_seconds()
    for start in range(0, trades, batch):
        n = min(batch, trades - start)
        with transaction.atomic():
            orders = MasterOrder.objects.bulk_create(
                MasterOrder(
                    master=master,
                    broker_order_id=f"B{start + i:09d}",
                    exchange="NSE",
                    trading_symbol=symbols[(start + i) % len(symbols)],
                    side="BUY" if (start + i) % 3 else "SELL",
                    quantity=10,
                    order_type="LIMIT",
                    product="MIS",
                    price=Decimal("1500.25"),
                    first_seen_at=now,
                )
                for i in range(n)
            )
            events = MasterOrderEvent.objects.bulk_create(
                MasterOrderEvent(
                    master_order=order,
                    kind="accepted",
                    source="push",
                    received_at=now,
                    quantity=10,
                    price=Decimal("1500.25"),
                )
                for order in orders
            )
            CopyTrade.objects.bulk_create(
                CopyTrade(
                    event=event,
                    master=master,
                    follower=follower,
                    tag=f"bench{start + i:010d}",
                    exchange="NSE",
                    trading_symbol=event.master_order.trading_symbol,
                    side=event.master_order.side,
                    order_type="LIMIT",
                    product="MIS",
                    price=Decimal("1500.25"),
                    average_price=Decimal("1500.30"),
                    master_quantity=10,
                    quantity=20,
                    filled_quantity=20,
                    lot_multiplier=Decimal("2"),
                    status=statuses[(start + i) % len(statuses)],
                    reason="",
                )
                for i, event in enumerate(events)
            )
    # Spread the trades over the past year (newest = now), as a year of copying would be.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT MIN(id), MAX(id) FROM trading_copytrade")
        lo, hi = cursor.fetchone()
    step = span / max(1, hi - lo)
    with transaction.atomic(), connection.cursor() as cursor:
        # Django keeps SQLite datetimes as UTC text "YYYY-MM-DD HH:MM:SS.ffffff".
        cursor.execute(
            "UPDATE trading_copytrade SET decided_at = strftime('%%Y-%%m-%%d %%H:%%M:%%f', %s, "
            "'-' || ((%s - id) * %s) || ' seconds'), updated_at = decided_at",
            [now.strftime("%Y-%m-%d %H:%M:%S"), hi, step],
        )

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.set_expiry(settings.SESSION_COOKIE_AGE)
    session.save()
    return session.session_key or "", user.pk


def _count_queries(session_key: str, since: str | None) -> tuple[int, int, str]:
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = session_key
    params = {"page": "1", "since": since or "stale"}
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(
            "/board/", params, headers={"HX-Request": "true"}, HTTP_HOST="127.0.0.1"
        )
    return response.status_code, len(ctx.captured_queries), response.content.decode()


def _start_gunicorn(
    env: dict[str, str], log: Path, *, app: str = "copytrade.wsgi", worker: str = "sync"
) -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            app,
            "--workers",
            "3",
            "--worker-class",
            "sync",
            "--bind",
            "127.0.0.1:0",
            "--log-level",
            "info",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log.read_text())
        booted = log.read_text().count("Booting worker")
        if match and booted >= 3:
            time.sleep(1.0)
            return proc, int(match.group(1))
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited: {log.read_text()}")
        time.sleep(0.1)
    raise SystemExit("gunicorn did not start")


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return round(float(number) * _UNIT_MS[unit], 3)


def _wrk(url: str, headers: dict[str, str], duration: int, connections: int) -> dict[str, object]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": round(rps, 1),
        "p50_ms": _ms(p50),
        "p99_ms": _ms(p99),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


_BASELINE_SETTINGS = """
SECRET_KEY = "bench-baseline-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "benchbase_urls"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes",
                  "django.contrib.sessions", "django.contrib.messages"]
# the default middleware of `django-admin startproject`
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
DATABASES = {}
USE_TZ = True
"""
_BASELINE_URLS = """
from django.http import HttpResponse
from django.urls import path

def bare(request):
    return HttpResponse(status=204)

urlpatterns = [path("bare/", bare)]
"""


def _baseline(workdir: Path, duration: int, connections: int) -> dict[str, object]:
    """The machine's yardstick now: a bare Django view answering 204 behind the default
    middleware, on gunicorn with 3 sync workers (the issue quotes ~3,100 rps here)."""
    base = workdir / "baseline"
    base.mkdir()
    (base / "benchbase_settings.py").write_text(_BASELINE_SETTINGS)
    (base / "benchbase_urls.py").write_text(_BASELINE_URLS)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(base),
        "DJANGO_SETTINGS_MODULE": "benchbase_settings",
    }
    proc, port = _start_gunicorn(
        env, base / "gunicorn.log", app="django.core.wsgi:get_wsgi_application()"
    )
    try:
        return _wrk(f"http://127.0.0.1:{port}/bare/", {}, duration, connections)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the bare-Django yardstick run"
    )
    parser.add_argument(
        "--also-gthread",
        action="store_true",
        help="also measure with the Procfile's gthread workers (3 x 4 threads)",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install -y wrk")

    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="ct-bench-board-"))
    env = dict(os.environ)
    env.update(
        COPYTRADE_VAR_DIR=str(workdir),
        DEBUG="false",
        LOG_LEVEL="WARNING",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("DATABASE_URL", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    _django(workdir)
    seed_started = time.monotonic()
    session_key, _ = _seed(args.trades)
    seed_seconds = time.monotonic() - seed_started

    status, changed_queries, html = _count_queries(session_key, None)
    assert status == 200, status
    token = re.search(r'data-version="([0-9a-f]+)"', html).group(1)  # type: ignore[union-attr]
    status, unchanged_queries, _ = _count_queries(session_key, token)
    assert status == 204, status

    from django.db import connections

    connections.close_all()
    log = workdir / "gunicorn.log"
    proc, port = _start_gunicorn(env, log)
    headers = {"Cookie": f"sessionid={session_key}", "HX-Request": "true"}
    try:
        base = f"http://127.0.0.1:{port}/board/?page=1&since="
        unchanged = _wrk(base + token, headers, args.duration, args.connections)
        changed = _wrk(base + "stale", headers, args.duration, args.connections)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    gthread = None
    if args.also_gthread:
        proc, port = _start_gunicorn(env, workdir / "gthread.log", worker="gthread")
        try:
            base = f"http://127.0.0.1:{port}/board/?page=1&since="
            gthread = {
                "unchanged": _wrk(base + token, headers, args.duration, args.connections),
                "changed": _wrk(base + "stale", headers, args.duration, args.connections),
            }
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    baseline = None if args.no_baseline else _baseline(workdir, args.duration, args.connections)
    unchanged["queries"] = unchanged_queries
    changed["queries"] = changed_queries
    result = {
        "trades": args.trades,
        "unchanged": unchanged,
        "changed": changed,
        "connections": args.connections,
        "duration_s": args.duration,
        "workers": 3,
        "seed_seconds": round(seed_seconds, 1),
        "baseline_bare_204": baseline,
        "gthread_3x4": gthread,
        "machine": {"cpus": os.cpu_count(), "load_before": round(load_before, 2)},
    }
    print(json.dumps(result))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
