"""Start and stop the sandbox's aiohttp application on an event loop (used by the
`sandbox` management command and by the test harness)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.server import SandboxCore, build_app

log = logging.getLogger("sandbox")


class Running:
    def __init__(self, core: SandboxCore, runner: web.AppRunner, port: int, host: str) -> None:
        self.core, self.runner, self.port, self.host = core, runner, port, host

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start(
    state_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    **core_options: Any,
) -> Running:
    core = SandboxCore(state_path, **core_options)
    app = build_app(core)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = getattr(site._server, "sockets", None)
    assert sockets, "the sandbox did not bind a socket"
    actual = int(sockets[0].getsockname()[1])
    return Running(core, runner, actual, host)


async def serve_forever(running: Running) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.stop()
