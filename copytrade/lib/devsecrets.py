"""Development secrets: generated once into an untracked file under var/, mode 0600.

Production never reaches this module: settings refuse to start without the secrets in the
environment.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import TypedDict

from cryptography.fernet import Fernet


class DevSecrets(TypedDict):
    SECRET_KEY: str
    CREDENTIAL_KEYS: list[str]


def load_or_create(path: Path) -> DevSecrets:
    """Read the development secrets file, creating it atomically on first use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        generated: DevSecrets = {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "CREDENTIAL_KEYS": [Fernet.generate_key().decode()],
        }
        # Write a private temporary file, then link it into place: the link is atomic and
        # fails if another process won the race, so nobody ever reads a half-written file.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(generated, handle, indent=2)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first; read theirs
        else:
            return generated
        finally:
            tmp.unlink()
    data = json.loads(path.read_text())
    return {"SECRET_KEY": data["SECRET_KEY"], "CREDENTIAL_KEYS": list(data["CREDENTIAL_KEYS"])}
