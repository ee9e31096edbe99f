"""The product's web server as a real process for tests: gunicorn started from the Procfile's
own command line (port 0, the test database), stopped and reaped afterwards.

Use it from a `transactional_db` test: the server reads the rows the test committed (SQLite
file or PostgreSQL test database) and the test sees what the server wrote.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def procfile_web_args(*, timeout: int | None = None, access_log: Path | None = None) -> list[str]:
    """The Procfile's `web:` command with the test's port (0: the kernel picks a free one)."""
    line = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    args = shlex.split(line.removeprefix("web:"))
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in ("--bind", "-b", "--timeout", "-t", "--access-logfile"):
            skip = True
            continue
        if arg.startswith(("--bind=", "--timeout=", "--access-logfile=")):
            continue
        out.append(arg)
    out[0] = str(ROOT / ".venv/bin/gunicorn")
    out += ["--bind", "127.0.0.1:0", "--graceful-timeout", "3"]
    if timeout is not None:
        out += ["--timeout", str(timeout)]
    if access_log is not None:  # the Procfile's access log format, into a file
        out += ["--access-logfile", str(access_log)]
    return out


def database_url() -> str:
    """The test database as a DATABASE_URL for another process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    return f"postgres://{user}{password}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


@dataclass
class LiveServer:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def web_server(
    tmp_path: Path,
    *,
    timeout: int | None = None,
    env: dict[str, str] | None = None,
    access_log: Path | None = None,
) -> Iterator[LiveServer]:
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "COPYTRADE_VAR_DIR": str(settings.VAR_DIR),
        **(env or {}),
    }
    environment.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # a test-only switch, never a server's
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            procfile_web_args(timeout=timeout, access_log=access_log),
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=handle,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        port = None
        while port is None:
            text = log.read_text(errors="replace")
            match = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", text)
            if match and text.count("Booting worker") >= 1:
                port = int(match.group(1))
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{text}")
            time.sleep(0.1)
        time.sleep(0.5)  # let the other workers finish booting
        yield LiveServer(url=f"http://127.0.0.1:{port}", log=log, process=process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
