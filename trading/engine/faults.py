"""Named kill points for crash tests: a copier subprocess started with

    COPIER_CRASH_AT=after_claim        (or after_rows, after_send, after_ack; ":N" = Nth time)

dies with `os._exit(CRASH_EXIT_CODE)` — no cleanup, no flush, like SIGKILL — the moment it
passes that point. Unset (always, outside tests) a kill point costs one dict lookup.

    after_rows   the decision transaction committed (copy trades PENDING, nothing claimed)
    after_claim  rows claimed (SENDING), before any network call
    after_send   the broker answered the order request, before the answer is recorded
    after_ack    the acknowledgement is recorded (SUCCESS committed)
"""

from __future__ import annotations

import logging
import os
import sys
import threading

CRASH_EXIT_CODE = 86
POINTS = ("after_rows", "after_claim", "after_send", "after_ack")

logger = logging.getLogger("trading.engine.faults")
_lock = threading.Lock()
_seen: dict[str, int] = {}


def _armed() -> tuple[str, int] | None:
    spec = os.environ.get("COPIER_CRASH_AT", "").strip()
    if not spec:
        return None
    name, _, nth = spec.partition(":")
    if name not in POINTS:
        raise ValueError(f"COPIER_CRASH_AT: unknown kill point {name!r} (one of {POINTS})")
    return name, int(nth or 1)


def kill_point(name: str) -> None:
    """Die here if this kill point is armed (and this is its Nth passage)."""
    armed = _armed()
    if armed is None or armed[0] != name:
        return
    with _lock:
        _seen[name] = _seen.get(name, 0) + 1
        if _seen[name] < armed[1]:
            return
    sys.stderr.write(f"copier: kill point {name} reached, exiting {CRASH_EXIT_CODE}\n")
    sys.stderr.flush()
    os._exit(CRASH_EXIT_CODE)
