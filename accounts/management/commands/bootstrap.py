"""First-run set-up for `make run`: create the first master account once.

Idempotent: a second run finds the master and changes nothing.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.models import User
from accounts.services import create_master

FIRST_MASTER = "master"


class Command(BaseCommand):
    help = "Create the first master account on the first run (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        if User.objects.filter(role=User.Role.MASTER).exists():
            self.stdout.write(
                "copytrade: existing accounts kept; see var/first-run.txt for the first sign-in."
            )
            return
        master, password = create_master(username=FIRST_MASTER, actor_repr="make run (first run)")
        from trading.engine.firstrun import link_sandbox

        sandbox_lines = link_sandbox(master)  # sandbox mode: the master's broker account
        lines = [
            "copytrade first run",
            "",
            f"Web:      http://127.0.0.1:{os.environ.get('WEB_PORT') or 8000}/",
            f"Username: {FIRST_MASTER}",
            f"Password: {password}",
            *sandbox_lines,
            "",
            "You will enrol a second factor (TOTP app) at the first login.",
        ]
        path = settings.VAR_DIR / "first-run.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        os.chmod(path, 0o600)
        banner = "=" * 64
        self.stdout.write(banner)
        for line in lines:
            self.stdout.write(line)
        self.stdout.write(f"(also written to {path}, readable only by you)")
        self.stdout.write(banner)
