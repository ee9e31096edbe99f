"""The sandbox's state file: its own SQLite database, apart from the product's.

It holds what must survive a restart and what management commands (other processes) change
while the server runs: accounts, the vendor app, daily sign-ins, session revocations, faults,
matching settings, dialects — and the server's write-through copy of orders, trades and
prices. Every change a command makes bumps `config_version`; the running server polls it and
reloads within ~250 ms.

Sandbox accounts are play money; their passwords are kept in clear so `sandbox_account show`
can print them. The file is created with mode 0600.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sandbox import options

DEFAULT_FUNDS = Decimal("1000000")
GLOBAL = "*"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    client_id TEXT PRIMARY KEY,
    password TEXT NOT NULL,
    api_key TEXT NOT NULL,
    name TEXT NOT NULL,
    funds TEXT NOT NULL,
    push_enabled INTEGER NOT NULL DEFAULT 1,
    session_epoch INTEGER NOT NULL DEFAULT 0,
    ws_epoch INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS daily_logins (
    client_id TEXT NOT NULL,
    day TEXT NOT NULL,
    at TEXT NOT NULL,
    via TEXT NOT NULL,
    PRIMARY KEY (client_id, day)
);
CREATE TABLE IF NOT EXISTS overrides (
    scope TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (scope, kind)
);
CREATE TABLE IF NOT EXISTS sessions (
    token TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    day TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    order_no TEXT PRIMARY KEY, client_id TEXT NOT NULL, data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trades (
    fill_id TEXT PRIMARY KEY, client_id TEXT NOT NULL, order_no TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS prices (
    exchange TEXT NOT NULL, token TEXT NOT NULL, price TEXT NOT NULL,
    PRIMARY KEY (exchange, token)
);
"""


class StoreError(ValueError):
    pass


@dataclass(frozen=True)
class VendorApp:
    app_code: str
    api_secret: str
    redirect_url: str


@dataclass(frozen=True)
class Account:
    client_id: str
    password: str
    api_key: str
    name: str
    funds: Decimal
    push_enabled: bool
    session_epoch: int
    ws_epoch: int

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data["funds"] = str(self.funds)
        return data


def default_path() -> Path:
    from django.conf import settings

    return Path(settings.SANDBOX_STATE_PATH)


def _default_redirect() -> str:
    try:
        from django.conf import settings

        return str(settings.ALICEBLUE_REDIRECT_URL)
    except Exception:  # settings not configured (bare use of the module)
        return "http://127.0.0.1:8000/broker/callback/"


class Store:
    """One connection to the state file. Not shared between threads."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        self.conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        if new:
            os.chmod(self.path, 0o600)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=10000")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    # --- meta ---------------------------------------------------------------------------------
    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def _set_meta(self, conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _bump(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('config_version', '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    def config_version(self) -> int:
        return int(self.meta("config_version", "0") or 0)

    def secret(self, key: str, nbytes: int = 32) -> str:
        """A generated secret kept in the file (created on first use)."""
        value = self.meta(key)
        if value is None:
            with self.tx() as conn:
                row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
                if row:
                    return str(row[0])
                value = secrets.token_urlsafe(nbytes)
                self._set_meta(conn, key, value)
        return value

    def next_seq(self, name: str, start: int = 100) -> int:
        with self.tx() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (f"seq:{name}",)).fetchone()
            value = int(row[0]) + 1 if row else start + 1
            self._set_meta(conn, f"seq:{name}", str(value))
        return value

    # --- vendor app ---------------------------------------------------------------------------
    def vendor_app(self) -> VendorApp:
        if self.meta("app_code") is None:
            with self.tx() as conn:
                if conn.execute("SELECT 1 FROM meta WHERE key = 'app_code'").fetchone() is None:
                    self._set_meta(conn, "app_code", "SBX" + secrets.token_hex(6).upper())
                    self._set_meta(conn, "api_secret", secrets.token_urlsafe(36))
                    self._set_meta(conn, "redirect_url", _default_redirect())
                    self._bump(conn)
        return VendorApp(
            app_code=self.meta("app_code") or "",
            api_secret=self.meta("api_secret") or "",
            redirect_url=self.meta("redirect_url") or "",
        )

    def set_redirect_url(self, url: str) -> VendorApp:
        if not (url.startswith("http://") or url.startswith("https://")):
            raise StoreError("the redirect URL must be an http(s) URL")
        self.vendor_app()
        with self.tx() as conn:
            self._set_meta(conn, "redirect_url", url)
            self._bump(conn)
        return self.vendor_app()

    # --- accounts -----------------------------------------------------------------------------
    def create_account(
        self,
        client_id: str | None = None,
        *,
        funds: Decimal | int | str = DEFAULT_FUNDS,
        password: str | None = None,
        name: str | None = None,
        push_enabled: bool = True,
    ) -> Account:
        try:
            amount = Decimal(str(funds))
        except ArithmeticError:
            raise StoreError(f"funds must be a number, not {funds!r}") from None
        if not amount.is_finite() or amount < 0:
            raise StoreError("funds must be zero or more")
        with self.tx() as conn:
            if client_id is None:
                while True:
                    client_id = str(secrets.randbelow(900000) + 100000)
                    if not conn.execute(
                        "SELECT 1 FROM accounts WHERE client_id = ?", (client_id,)
                    ).fetchone():
                        break
            client_id = client_id.strip().upper()
            if not client_id.isalnum() or not 2 <= len(client_id) <= 16:
                raise StoreError("a client id is 2-16 letters and digits")
            if conn.execute("SELECT 1 FROM accounts WHERE client_id = ?", (client_id,)).fetchone():
                raise StoreError(f"sandbox account {client_id} already exists")
            conn.execute(
                "INSERT INTO accounts (client_id, password, api_key, name, funds, push_enabled, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    client_id,
                    password or secrets.token_urlsafe(12),
                    secrets.token_hex(24),
                    name or f"SANDBOX USER {client_id}",
                    str(amount),
                    int(push_enabled),
                    datetime.now(UTC).isoformat(),
                ),
            )
            self._bump(conn)
        account = self.account(client_id)
        assert account is not None
        return account

    def account(self, client_id: str) -> Account | None:
        row = self.conn.execute(
            "SELECT client_id, password, api_key, name, funds, push_enabled, session_epoch, "
            "ws_epoch FROM accounts WHERE client_id = ?",
            (client_id.strip().upper(),),
        ).fetchone()
        return _account(row) if row else None

    def accounts(self) -> list[Account]:
        rows = self.conn.execute(
            "SELECT client_id, password, api_key, name, funds, push_enabled, session_epoch, "
            "ws_epoch FROM accounts ORDER BY client_id"
        ).fetchall()
        return [_account(row) for row in rows]

    def update_account(
        self,
        client_id: str,
        *,
        funds: Decimal | None = None,
        push_enabled: bool | None = None,
    ) -> Account:
        account = self.require(client_id)
        with self.tx() as conn:
            if funds is not None:
                conn.execute(
                    "UPDATE accounts SET funds = ? WHERE client_id = ?",
                    (str(Decimal(str(funds))), account.client_id),
                )
            if push_enabled is not None:
                conn.execute(
                    "UPDATE accounts SET push_enabled = ? WHERE client_id = ?",
                    (int(push_enabled), account.client_id),
                )
            self._bump(conn)
        return self.require(client_id)

    def require(self, client_id: str) -> Account:
        account = self.account(client_id)
        if account is None:
            raise StoreError(f"no sandbox account {client_id.strip().upper()}")
        return account

    # --- daily sign-in, sessions ------------------------------------------------------------------
    def record_daily_login(self, client_id: str, day: date, via: str) -> None:
        account = self.require(client_id)
        with self.tx() as conn:
            conn.execute(
                "INSERT INTO daily_logins (client_id, day, at, via) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(client_id, day) DO NOTHING",
                (account.client_id, day.isoformat(), datetime.now(UTC).isoformat(), via),
            )
            self._bump(conn)

    def daily_logins(self, day: date) -> set[str]:
        rows = self.conn.execute(
            "SELECT client_id FROM daily_logins WHERE day = ?", (day.isoformat(),)
        ).fetchall()
        return {row[0] for row in rows}

    def expire_sessions(self, client_id: str | None = None) -> int:
        """Revoke every API session of one account (or of all accounts)."""
        with self.tx() as conn:
            if client_id is None:
                cur = conn.execute("UPDATE accounts SET session_epoch = session_epoch + 1")
            else:
                cur = conn.execute(
                    "UPDATE accounts SET session_epoch = session_epoch + 1 WHERE client_id = ?",
                    (client_id.strip().upper(),),
                )
            self._bump(conn)
        return cur.rowcount

    def drop_websockets(self, client_id: str | None = None) -> None:
        with self.tx() as conn:
            if client_id is None:
                conn.execute("UPDATE accounts SET ws_epoch = ws_epoch + 1")
            else:
                conn.execute(
                    "UPDATE accounts SET ws_epoch = ws_epoch + 1 WHERE client_id = ?",
                    (client_id.strip().upper(),),
                )
            self._bump(conn)

    def save_session(self, token: str, client_id: str, kind: str, day: date, epoch: int) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO sessions (token, client_id, kind, day, epoch, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (token, client_id, kind, day.isoformat(), epoch, datetime.now(UTC).isoformat()),
        )

    def sessions(self) -> list[tuple[str, str, str, date, int]]:
        rows = self.conn.execute("SELECT token, client_id, kind, day, epoch FROM sessions")
        return [(t, c, k, date.fromisoformat(d), e) for t, c, k, d, e in rows.fetchall()]

    # --- faults, matching, dialect ---------------------------------------------------------------
    def overrides(self, kind: str) -> dict[str, dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT scope, data FROM overrides WHERE kind = ?", (kind,)
        ).fetchall()
        return {scope: json.loads(data) for scope, data in rows}

    def set_overrides(self, kind: str, scope: str, values: dict[str, Any]) -> dict[str, Any]:
        validate = {
            "faults": options.validate_faults,
            "matching": options.validate_matching,
        }[kind]
        clean = validate(values)
        if scope != GLOBAL:
            scope = self.require(scope).client_id
        with self.tx() as conn:
            row = conn.execute(
                "SELECT data FROM overrides WHERE scope = ? AND kind = ?", (scope, kind)
            ).fetchone()
            merged = {**(json.loads(row[0]) if row else {}), **clean}
            conn.execute(
                "INSERT OR REPLACE INTO overrides (scope, kind, data) VALUES (?, ?, ?)",
                (scope, kind, json.dumps(merged)),
            )
            self._bump(conn)
        return merged

    def clear_overrides(self, kind: str, scope: str | None = None) -> None:
        with self.tx() as conn:
            if scope is None:
                conn.execute("DELETE FROM overrides WHERE kind = ?", (kind,))
            else:
                conn.execute(
                    "DELETE FROM overrides WHERE kind = ? AND scope = ?",
                    (kind, scope if scope == GLOBAL else scope.strip().upper()),
                )
            self._bump(conn)

    def dialect(self) -> dict[str, str]:
        stored = json.loads(self.meta("dialect", "{}") or "{}")
        return {**options.default_dialect(), **stored}

    def set_dialect(self, values: dict[str, Any]) -> dict[str, str]:
        clean = options.validate_dialect(values)
        with self.tx() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'dialect'").fetchone()
            merged = {**(json.loads(row[0]) if row else {}), **clean}
            self._set_meta(conn, "dialect", json.dumps(merged))
            self._bump(conn)
        return self.dialect()

    def reset_dialect(self) -> dict[str, str]:
        with self.tx() as conn:
            conn.execute("DELETE FROM meta WHERE key = 'dialect'")
            self._bump(conn)
        return self.dialect()

    # --- write-through of the server's book -------------------------------------------------------
    def save_book(
        self,
        orders: list[tuple[str, str, dict[str, Any]]],
        trades: list[tuple[str, str, str, dict[str, Any]]],
    ) -> None:
        if not orders and not trades:
            return
        with self.tx() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO orders (order_no, client_id, data) VALUES (?, ?, ?)",
                [(no, cid, json.dumps(data)) for no, cid, data in orders],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO trades (fill_id, client_id, order_no, data) "
                "VALUES (?, ?, ?, ?)",
                [(fid, cid, no, json.dumps(data)) for fid, cid, no, data in trades],
            )

    def load_book(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        orders = [json.loads(r[0]) for r in self.conn.execute("SELECT data FROM orders")]
        trades = [
            json.loads(r[0]) for r in self.conn.execute("SELECT data FROM trades ORDER BY rowid")
        ]
        return orders, trades

    def save_prices(self, prices: dict[tuple[str, str], Decimal]) -> None:
        with self.tx() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO prices (exchange, token, price) VALUES (?, ?, ?)",
                [(e, t, str(p)) for (e, t), p in prices.items()],
            )

    def load_prices(self) -> dict[tuple[str, str], Decimal]:
        rows = self.conn.execute("SELECT exchange, token, price FROM prices").fetchall()
        return {(e, t): Decimal(p) for e, t, p in rows}


def _account(row: tuple[Any, ...]) -> Account:
    cid, password, api_key, name, funds, push, epoch, ws_epoch = row
    return Account(cid, password, api_key, name, Decimal(funds), bool(push), epoch, ws_epoch)


def vendor_app(path: str | os.PathLike[str] | None = None) -> VendorApp:
    """The sandbox vendor app (app code, API secret, redirect URL), created on first use.

    The product's development setup reads its OAuth app from here, so the Open API login works
    against the sandbox with no configuration.
    """
    store = Store(path)
    try:
        return store.vendor_app()
    finally:
        store.close()
