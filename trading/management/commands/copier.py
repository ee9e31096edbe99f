"""The copier: listens to every master's order feed, decides and sends follower orders, tracks
their fills (trading.engine.runner). A long-running process in `make run` (Procfile).

    python manage.py copier                 # run until SIGTERM/SIGINT
    python manage.py copier --once          # one pass of every step, then exit
    python manage.py copier --name copier-2 # a second process (its own heartbeat row)

Refuses to start while migrations are unapplied. SIGTERM (or Ctrl-C) stops taking new work,
finishes the sends in flight and their result writes, and exits 0; SIGKILL loses nothing —
the next start resolves SENDING rows by their tags and sends or expires PENDING ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trading.engine import steps
from trading.engine.runner import Copier

UNAPPLIED = (
    "copier: the database has unapplied migrations ({names}); run `python manage.py migrate` first."
)


class Command(BaseCommand):
    help = "Run the copier (detect master orders, send follower copies, track fills)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="run one pass and exit")
        parser.add_argument("--name", default="copier", help="this process's name (heartbeat row)")

    def handle(self, *args: Any, **options: Any) -> None:
        pending = steps.unapplied_migrations()
        if pending:
            raise CommandError(UNAPPLIED.format(names=", ".join(pending[:5])), returncode=2)
        from django.db import connection

        connection.close()  # the copier's own database thread opens its connection
        asyncio.run(self._main(name=options["name"], once=options["once"]))

    async def _main(self, *, name: str, once: bool) -> None:
        copier = Copier(name=name)
        if once:
            async with copier:
                await copier.tick()
            return
        loop = asyncio.get_running_loop()

        def on_signal(signum: int, frame: object) -> None:
            # Every SIGTERM/SIGINT asks for the same clean stop (a supervisor may send more
            # than one); this handler stays installed until the process exits, so a late
            # signal never kills a copier that is finishing its sends.
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(copier.stop)

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)
        await copier.run()
