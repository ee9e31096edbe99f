"""Production settings: refuse to start without secrets, and pass `check --deploy` cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def _run(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "CREDENTIAL_KEYS"}}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_secret_key():
    result = _run({"COPYTRADE_ENV": "production", "ALLOWED_HOSTS": "example.com"}, "check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_without_credential_keys():
    result = _run(
        {
            "COPYTRADE_ENV": "production",
            "ALLOWED_HOSTS": "example.com",
            "SECRET_KEY": "x" * 60,
        },
        "check",
    )
    assert result.returncode != 0
    assert "CREDENTIAL_KEYS must be set" in result.stderr


def test_production_settings_pass_check_deploy_without_silencing():
    result = _run(
        {
            "COPYTRADE_ENV": "production",
            "ALLOWED_HOSTS": "copytrade.example.com",
            "SECRET_KEY": "k7$" + Fernet.generate_key().decode() + "Zq!9-unique-chars",
            "CREDENTIAL_KEYS": Fernet.generate_key().decode(),
        },
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues (0 silenced)" in result.stdout


def test_blank_environment_values_take_the_default(monkeypatch):
    from copytrade.lib.env import env_bool, env_int, env_list

    monkeypatch.setenv("CT_TEST_FLAG", "  ")
    monkeypatch.setenv("CT_TEST_LIST", "")
    monkeypatch.setenv("CT_TEST_INT", "")
    assert env_bool("CT_TEST_FLAG", True) is True
    assert env_list("CT_TEST_LIST", ["a"]) == ["a"]
    assert env_int("CT_TEST_INT", 7) == 7
    monkeypatch.setenv("CT_TEST_FLAG", "off")
    assert env_bool("CT_TEST_FLAG", True) is False
