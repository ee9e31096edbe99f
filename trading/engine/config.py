"""The copier's tunables, read from settings (env, see .env.example) with safe defaults."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


def _get(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


@dataclass(frozen=True)
class CopierConfig:
    #: Master order-book poll interval: fast while the push is down/silent/unreadable,
    #: slow while it is healthy (both bounded by the request budget).
    poll_fast: float = 1.0
    poll_slow: float = 15.0
    #: Follower order-book poll interval while the account has open copies.
    follower_poll_fast: float = 2.0
    follower_poll_slow: float = 30.0
    #: Requests kept back from pollers for order look-ups, quotes and positions.
    budget_reserve: int = 150
    #: How often sessions, masters and followers are re-read.
    refresh: float = 2.0
    heartbeat: float = 5.0
    #: How often the sweeper looks for PENDING rows nobody sent, due retries and orphans.
    sweep: float = 0.5
    #: A PENDING row older than this that nobody claimed is claimed by the sweeper.
    unclaimed_grace: float = 1.0
    #: Push feed: "silent" after this long without a frame (then the poll goes fast).
    push_silent: float = 60.0
    #: Follower accounts' P&L refresh (0 = off).
    pnl_refresh: float = 60.0
    #: Track follower orders (push + poll). Off only for the thin-broker benchmark.
    track_followers: bool = True
    #: Load the contract master once a day by itself (off in tests, which load what they use).
    contracts: bool = True
    #: Stop tracking an account this long after its last open copy settled.
    follower_idle: float = 120.0
    #: SIGTERM: how long to wait for in-flight sends and their writes.
    drain_timeout: float = 30.0
    #: Outcome writer batching.
    write_batch: int = 500
    write_delay: float = 0.005
    #: Reconciliation (trading.engine.lifecycle.reconcile): copied positions vs the master's.
    reconcile: float = 60.0
    #: How often the master feeds are checked for a loss and late exits proposed.
    feed_check: float = 2.0

    @classmethod
    def from_settings(cls, **overrides: object) -> CopierConfig:
        values: dict[str, object] = {
            "poll_fast": _get("COPIER_POLL_FAST_SECONDS", 1.0),
            "poll_slow": _get("COPIER_POLL_SLOW_SECONDS", 15.0),
            "follower_poll_fast": _get("COPIER_FOLLOWER_POLL_FAST_SECONDS", 2.0),
            "follower_poll_slow": _get("COPIER_FOLLOWER_POLL_SLOW_SECONDS", 30.0),
            "push_silent": _get("COPIER_PUSH_SILENT_SECONDS", 60.0),
            "pnl_refresh": _get("COPIER_PNL_REFRESH_SECONDS", 60.0),
            "heartbeat": _get("COPIER_HEARTBEAT_SECONDS", 5.0),
            "unclaimed_grace": _get("COPIER_UNCLAIMED_GRACE_SECONDS", 1.0),
            "contracts": bool(getattr(settings, "COPIER_LOAD_CONTRACTS", True)),
            "reconcile": _get("COPIER_RECONCILE_SECONDS", 60.0),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
