"""Run the AliceBlue-compatible sandbox broker (its own process, its own state file)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from sandbox import runner


class Command(BaseCommand):
    help = "Run the sandbox broker: AliceBlue's REST, websockets, login page and terminal."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=settings.SANDBOX_HOST)
        parser.add_argument("--port", type=int, default=settings.SANDBOX_PORT)
        parser.add_argument("--state", default=str(settings.SANDBOX_STATE_PATH))
        parser.add_argument(
            "--round-the-clock",
            action="store_true",
            default=settings.SANDBOX_ROUND_THE_CLOCK,
            help="accept regular orders outside exchange hours and on holidays",
        )
        parser.add_argument("--seed", type=int, default=0, help="seed of the price walk")
        parser.add_argument(
            "--walk-interval",
            type=float,
            default=1.0,
            help="seconds between random-walk price steps (0 = prices move only when set)",
        )
        parser.add_argument(
            "--ready-file", default="", help="write {port, url} as JSON here once listening"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self._run(options))

    async def _run(self, options: dict[str, Any]) -> None:
        running = await runner.start(
            options["state"],
            host=options["host"],
            port=options["port"],
            round_the_clock=options["round_the_clock"],
            seed=options["seed"],
            walk_interval=options["walk_interval"] or None,
        )
        app = running.core.op_vendor_app()
        self.stdout.write(
            f"Sandbox broker on {running.url} (state {options['state']}; "
            f"round-the-clock {'on' if options['round_the_clock'] else 'off'})\n"
            f"  terminal:    {running.url}/terminal/\n"
            f"  vendor app:  {app['app_code']} → {app['redirect_url']}\n"
        )
        self.stdout.flush()
        if options["ready_file"]:
            Path(options["ready_file"]).write_text(
                json.dumps({"port": running.port, "url": running.url})
            )
        await runner.serve_forever(running)
