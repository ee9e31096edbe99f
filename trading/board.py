"""Database triggers that keep `FollowerBoard` in step with `CopyTrade`.

Why triggers rather than a call in each writer: every writer of copy trades (the copier's
conditional claims and batched fill updates, expiry sweeps, a person's cancel, the admin, a
data fix in a shell) changes the board without having to remember it, in the same
transaction as the change, so a board's version can never lag a committed trade.

* SQLite: row-level triggers (writers are serialised by the database lock).
* PostgreSQL: statement-level triggers over transition tables; one UPDATE of many rows bumps
  each follower's row once, and the upsert takes the board rows' locks in follower order, so
  two statements touching the same followers never deadlock on them.

SQLite drops a table's triggers when Django's schema editor rebuilds the table (any later
migration that adds a NOT NULL column or alters a field of CopyTrade does), so
`install_triggers` is idempotent and runs after every `migrate` (post_migrate, see
`trading.apps`) as well as in migrations 0002 and 0008.

What is counted: ``total`` counts every copy trade row (the board lists them all and pages by
it); the per-status columns count copied orders only, the rows with action = place (a
freeze-quantity leg is its own place row). A master's modification or cancel adds a modify or
cancel row for the same follower order: it moves ``total`` and ``version`` (the board shows
the row) but not the statistics.
"""

from __future__ import annotations

from django.db import connection as default_connection
from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from trading.models import CopyTradeAction

# (status value, FollowerBoard column); the order is the column order in the SQL below.
STATUS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("PENDING", "pending"),
    ("SENDING", "sending"),
    ("SUCCESS", "success"),
    ("FAILED", "failed"),
    ("CANCELLED", "cancelled"),
    ("EXPIRED", "expired"),
    ("UNKNOWN", "unknown"),
    ("SKIPPED", "skipped"),
)
_COLS = [column for _, column in STATUS_COLUMNS]
_PLACE = CopyTradeAction.PLACE.value  # the statistics count these rows only
_BOARD = "trading_followerboard"
_TRADES = "trading_copytrade"
TRIGGER_NAMES = (
    "trading_copytrade_board_ai",
    "trading_copytrade_board_au",
    "trading_copytrade_board_ad",
)


# --- SQLite ------------------------------------------------------------------------------------
def _sqlite_upsert(row: str) -> str:
    flags = ", ".join(
        f"({row}.status = '{status}' AND {row}.action = '{_PLACE}')" for status, _ in STATUS_COLUMNS
    )
    adds = ", ".join(f"{col} = {col} + excluded.{col}" for col in _COLS)
    return (
        f"INSERT INTO {_BOARD} (follower_id, version, total, {', '.join(_COLS)}) "
        f"VALUES ({row}.follower_id, 1, 1, {flags}) "
        f"ON CONFLICT (follower_id) DO UPDATE SET version = version + 1, total = total + 1, "
        f"{adds};"
    )


def _sqlite_subtract(row: str) -> str:
    subs = ", ".join(
        f"{col} = {col} - ({row}.status = '{status}' AND {row}.action = '{_PLACE}')"
        for status, col in STATUS_COLUMNS
    )
    return (
        f"UPDATE {_BOARD} SET version = version + 1, total = total - 1, {subs} "
        f"WHERE follower_id = {row}.follower_id;"
    )


def _sqlite_statements() -> list[str]:
    # Drop and create (in one transaction, see install_triggers): a changed definition
    # replaces the one an older release installed.
    return [f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGER_NAMES] + [
        f"CREATE TRIGGER trading_copytrade_board_ai AFTER INSERT ON {_TRADES} "
        f"BEGIN {_sqlite_upsert('NEW')} END",
        f"CREATE TRIGGER trading_copytrade_board_au AFTER UPDATE ON {_TRADES} "
        f"BEGIN {_sqlite_subtract('OLD')} {_sqlite_upsert('NEW')} END",
        f"CREATE TRIGGER trading_copytrade_board_ad AFTER DELETE ON {_TRADES} "
        f"BEGIN {_sqlite_subtract('OLD')} END",
    ]


# --- PostgreSQL --------------------------------------------------------------------------------
def _pg_function(name: str, source: str) -> str:
    sums = ", ".join(
        f"SUM(CASE WHEN d.status = '{status}' AND d.action = '{_PLACE}' THEN d.sign ELSE 0 END)"
        for status, _ in STATUS_COLUMNS
    )
    adds = ", ".join(f"{col} = b.{col} + EXCLUDED.{col}" for col in _COLS)
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  INSERT INTO {_BOARD} AS b (follower_id, version, total, {", ".join(_COLS)})
  SELECT d.follower_id, 1, SUM(d.sign), {sums}
  FROM ({source}) AS d
  GROUP BY d.follower_id
  ORDER BY d.follower_id
  ON CONFLICT (follower_id) DO UPDATE SET
    version = b.version + 1, total = b.total + EXCLUDED.total, {adds};
  RETURN NULL;
END
$fn$"""


def _pg_statements() -> list[str]:
    new_rows = "SELECT follower_id, status, action, 1 AS sign FROM board_new"
    old_rows = "SELECT follower_id, status, action, -1 AS sign FROM board_old"
    specs = [
        ("trading_copytrade_board_ai", "INSERT", "NEW TABLE AS board_new", new_rows),
        (
            "trading_copytrade_board_au",
            "UPDATE",
            "OLD TABLE AS board_old NEW TABLE AS board_new",
            f"{new_rows} UNION ALL {old_rows}",
        ),
        ("trading_copytrade_board_ad", "DELETE", "OLD TABLE AS board_old", old_rows),
    ]
    statements: list[str] = []
    for name, event, referencing, source in specs:
        function = f"{name}_fn"
        statements += [
            _pg_function(function, source),
            f"DROP TRIGGER IF EXISTS {name} ON {_TRADES}",
            f"CREATE TRIGGER {name} AFTER {event} ON {_TRADES} REFERENCING {referencing} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        ]
    return statements


def install_triggers(connection: BaseDatabaseWrapper | None = None) -> None:
    """Create (or re-create) the board triggers; safe to call any number of times."""
    connection = connection or default_connection
    if connection.vendor == "sqlite":
        statements = _sqlite_statements()
    elif connection.vendor == "postgresql":
        statements = _pg_statements()
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(f"board triggers for {connection.vendor}")
    # One transaction: no write can fall between a DROP and its CREATE uncounted.
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def drop_triggers(connection: BaseDatabaseWrapper | None = None) -> None:
    connection = connection or default_connection
    with connection.cursor() as cursor:
        for name in TRIGGER_NAMES:
            if connection.vendor == "sqlite":
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
            else:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {_TRADES}")
                cursor.execute(f"DROP FUNCTION IF EXISTS {name}_fn()")


def triggers_installed(connection: BaseDatabaseWrapper | None = None) -> bool:
    connection = connection or default_connection
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [_TRADES],
            )
        else:
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                [_TRADES],
            )
        found = {row[0] for row in cursor.fetchall()}
    return set(TRIGGER_NAMES) <= found


def rebuild_boards(connection: BaseDatabaseWrapper | None = None) -> int:
    """Recompute every follower's counters from its copy trades (a repair tool; the triggers
    keep them right). Bumps each version so open boards re-render. Returns the row count."""
    connection = connection or default_connection
    sums = ", ".join(
        f"SUM(CASE WHEN status = '{status}' AND action = '{_PLACE}' THEN 1 ELSE 0 END)"
        for status, _ in STATUS_COLUMNS
    )
    sets = ", ".join(f"{col} = excluded.{col}" for col in _COLS)
    with connection.cursor() as cursor:
        # Followers whose trades are all gone keep a row with zero counts.
        cursor.execute(
            f"UPDATE {_BOARD} SET version = version + 1, total = 0, "
            + ", ".join(f"{col} = 0" for col in _COLS)
        )
        cursor.execute(
            f"INSERT INTO {_BOARD} AS b (follower_id, version, total, {', '.join(_COLS)}) "
            f"SELECT follower_id, 1, COUNT(*), {sums} FROM {_TRADES} "
            f"WHERE true GROUP BY follower_id "
            f"ON CONFLICT (follower_id) DO UPDATE SET version = b.version + 1, "
            f"total = excluded.total, {sets}"
        )
        cursor.execute(f"SELECT COUNT(*) FROM {_BOARD}")
        return int(cursor.fetchone()[0])
