"""A consistent copy of the product's database into var/backups/ (or --output-dir).

SQLite: the online backup API (consistent while the web and the copier keep writing), then an
integrity check of the copy. PostgreSQL: `pg_dump --format=custom`. Files are mode 0600 in a
0700 directory. The credential encryption keys are NOT in the backup: keep them apart.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _private_file(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)


def _free_name(directory: Path, stem: str, suffix: str) -> Path:
    candidate = directory / f"{stem}{suffix}"
    n = 2
    while candidate.exists():
        candidate = directory / f"{stem}-{n}{suffix}"
        n += 1
    return candidate


def backup_sqlite(source: str, target: Path) -> None:
    _private_file(target)
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(str(target))
    try:
        with dst:
            src.backup(dst, pages=1024)
        result = dst.execute("PRAGMA integrity_check").fetchone()
        if not result or result[0] != "ok":
            raise CommandError(f"the backup copy failed its integrity check: {result}")
    finally:
        dst.close()
        src.close()
    os.chmod(target, 0o600)


def backup_postgresql(db: dict[str, Any], target: Path) -> None:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise CommandError("pg_dump was not found on PATH; install the PostgreSQL client tools.")
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    command = [pg_dump, "--format=custom", "--no-password", f"--file={target}"]
    if db.get("HOST"):
        command.append(f"--host={db['HOST']}")
    if db.get("PORT"):
        command.append(f"--port={db['PORT']}")
    if db.get("USER"):
        command.append(f"--username={db['USER']}")
    command.append(str(db["NAME"]))
    _private_file(target)
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        command, env=env, capture_output=True, text=True, timeout=3600, check=False
    )
    if result.returncode != 0:
        target.unlink(missing_ok=True)
        raise CommandError(f"pg_dump failed: {result.stderr.strip()}")
    os.chmod(target, 0o600)


class Command(BaseCommand):
    help = "Write a consistent copy of the database to var/backups/ (SQLite backup or pg_dump)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output-dir",
            default=None,
            help="Directory for the backup (default: var/backups/).",
        )
        parser.add_argument("--database", default="default")

    def handle(self, *args: Any, **options: Any) -> None:
        alias = options["database"]
        db = connections[alias].settings_dict
        out_dir = _private_dir(Path(options["output_dir"] or settings.VAR_DIR / "backups"))
        stamp = datetime.now().astimezone().strftime("%Y%m%d-%H%M%S")
        vendor = connections[alias].vendor
        if vendor == "sqlite":
            source = str(db["NAME"])
            if source == ":memory:" or not Path(source).exists():
                raise CommandError(f"no SQLite database file at {source}")
            target = _free_name(out_dir, f"copytrade-{stamp}", ".sqlite3")
            backup_sqlite(source, target)
        elif vendor == "postgresql":
            target = _free_name(out_dir, f"copytrade-{stamp}", ".pgdump")
            backup_postgresql(db, target)
        else:
            raise CommandError(f"backups of {vendor} databases are not supported")
        size = target.stat().st_size
        self.stdout.write(f"Backup written: {target} ({size} bytes, mode 0600)")
        self.stdout.write(
            "The credential encryption keys (CREDENTIAL_KEYS) are not in it: keep them apart "
            "from the backups. Without them the stored credentials cannot be read."
        )
