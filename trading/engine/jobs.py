"""Periodic jobs of the copier (the lifecycle engine's seam into the runner).

A job is ``async def job(copier) -> None``; the copier runs each registered job every
``every`` seconds in `Copier.run` and once per `Copier.tick` (tests, ``--once``) when
``in_tick``. A job reaches the database only through ``copier.db`` (the copier's one DB
thread) and the broker through ``copier.clients`` / ``copier._client(account_id)``; new
CopyTrade rows it writes are sent with ``copier._dispatch(ids)``. A failing job is logged and
counted and runs again next time; it never stops the copier.

Jobs register themselves on import (the modules of `trading.engine.lifecycle`)::

    @jobs.periodic("reconcile", every=lambda config: config.reconcile)
    async def reconcile(copier: Copier) -> None: ...
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trading.engine.config import CopierConfig
    from trading.engine.runner import Copier

JobFn = Callable[["Copier"], Awaitable[Any]]


@dataclass(frozen=True)
class Job:
    name: str
    every: Callable[[CopierConfig], float]
    run: JobFn
    in_tick: bool = True


JOBS: dict[str, Job] = {}


def periodic(
    name: str, *, every: float | Callable[[CopierConfig], float], in_tick: bool = True
) -> Callable[[JobFn], JobFn]:
    """Register ``fn`` as the periodic job ``name`` (registering a name again replaces it)."""
    if callable(every):
        interval = every
    else:
        seconds = float(every)

        def interval(_config: CopierConfig) -> float:
            return seconds

    def register(fn: JobFn) -> JobFn:
        JOBS[name] = Job(name=name, every=interval, run=fn, in_tick=in_tick)
        return fn

    return register


def registered() -> list[Job]:
    """Every job, after importing the modules that register them."""
    import trading.engine.lifecycle  # noqa: F401  (registers the lifecycle jobs)

    return list(JOBS.values())
