"""Re-encrypt every stored secret under the newest key (the first of CREDENTIAL_KEYS).

To rotate: put a new Fernet key first in CREDENTIAL_KEYS and keep the old ones after it,
restart every process, run this command, then drop the old keys. Idempotent: run it again
and it rotates nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.services import rotate_credentials


class Command(BaseCommand):
    help = "Re-encrypt every stored broker secret under the newest CREDENTIAL_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        report = rotate_credentials(actor_repr="manage.py rotate_credentials")
        self.stdout.write(
            f"Rotated {report.rotated} value(s); {report.already_current} already under the "
            f"newest key; {len(report.failed)} failed."
        )
        self.stdout.write("Columns: " + ", ".join(report.columns))
        if report.failed:
            for item in report.failed:
                self.stderr.write(f"cannot decrypt with any configured key: {item}")
            raise CommandError(
                f"{len(report.failed)} value(s) could not be decrypted with CREDENTIAL_KEYS; "
                "they were left as they are."
            )
