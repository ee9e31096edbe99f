"""`make backup` → `manage.py backup`: a consistent, private copy of the database."""

from __future__ import annotations

import io
import shutil
import sqlite3
import stat
import subprocess

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import User
from tests.factories import UserFactory


@pytest.mark.django_db(transaction=True)
def test_backup_writes_a_private_consistent_copy(tmp_path):
    UserFactory(username="in-the-backup")
    out = io.StringIO()
    call_command("backup", output_dir=str(tmp_path / "backups"), stdout=out)
    files = list((tmp_path / "backups").iterdir())
    assert len(files) == 1
    backup = files[0]
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert stat.S_IMODE(backup.parent.stat().st_mode) == 0o700
    assert "keep them apart" in out.getvalue()
    if connection.vendor == "sqlite":
        assert backup.suffix == ".sqlite3"
        copy = sqlite3.connect(backup)
        try:
            assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            names = [row[0] for row in copy.execute("SELECT username FROM accounts_user")]
        finally:
            copy.close()
        assert "in-the-backup" in names
    else:
        assert backup.suffix == ".pgdump"
        listing = subprocess.run(
            ["pg_restore", "--list", str(backup)], capture_output=True, text=True, check=True
        )
        assert "accounts_user" in listing.stdout
    # Two backups in the same second get two files.
    call_command("backup", output_dir=str(tmp_path / "backups"), stdout=io.StringIO())
    assert len(list((tmp_path / "backups").iterdir())) == 2


@pytest.mark.django_db(transaction=True)
def test_sqlite_backup_is_consistent_while_another_connection_writes(tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite online backup")
    UserFactory(username="before-backup")
    writer = sqlite3.connect(connection.settings_dict["NAME"], timeout=20)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute(
            "INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name,"
            " email, is_staff, is_active, date_joined, role) VALUES"
            " ('x', 0, 'uncommitted', '', '', '', 0, 1, '2026-01-01', 'staff')"
        )
        call_command("backup", output_dir=str(tmp_path), stdout=io.StringIO())
        writer.rollback()
    finally:
        writer.close()
    (backup,) = tmp_path.iterdir()
    copy = sqlite3.connect(backup)
    try:
        names = {row[0] for row in copy.execute("SELECT username FROM accounts_user")}
    finally:
        copy.close()
    assert "before-backup" in names and "uncommitted" not in names
    assert User.objects.filter(username="uncommitted").count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump is not installed")
def test_pg_dump_path(tmp_path, settings):
    if connection.vendor != "postgresql":
        pytest.skip("runs when the suite runs on PostgreSQL")
    UserFactory(username="pg-backup")
    call_command("backup", output_dir=str(tmp_path), stdout=io.StringIO())
    (backup,) = tmp_path.iterdir()
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    restored = subprocess.run(
        ["pg_restore", "--data-only", "--table=accounts_user", "--file=-", str(backup)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "pg-backup" in restored.stdout
