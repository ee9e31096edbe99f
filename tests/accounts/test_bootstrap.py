from __future__ import annotations

import stat

import pytest
from django.core.management import call_command

from accounts.models import Master, User

pytestmark = pytest.mark.django_db


def test_bootstrap_creates_the_first_master_once_and_writes_a_private_file(
    settings, tmp_path, capsys
):
    settings.VAR_DIR = tmp_path
    settings.SANDBOX_STATE_PATH = tmp_path / "sandbox.sqlite3"  # the first run links one
    call_command("bootstrap")
    out = capsys.readouterr().out
    assert "Username: master" in out
    path = tmp_path / "first-run.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    password = next(
        line.split(": ", 1)[1]
        for line in path.read_text().splitlines()
        if line.startswith("Password")
    )
    assert User.objects.get(username="master").check_password(password)

    call_command("bootstrap")
    assert Master.objects.count() == 1
    assert "Password" not in capsys.readouterr().out
