"""`python manage.py api_token USERNAME`: issue (printed once, only a digest stored), list,
revoke; audited."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from api import tokens
from api.models import ApiToken
from trading.models import AuditEvent


def _run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("api_token", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def test_issue_prints_the_token_once_and_stores_only_a_digest(client, follower_a):
    secret, note = _run("fl_alice", "--name", "laptop")
    assert secret.startswith("ct_") and len(secret) > 40
    assert "shown once" in note
    token = ApiToken.objects.get(user=follower_a.user)
    assert token.name == "laptop"
    assert token.digest == tokens.digest(secret)
    assert secret not in (token.digest, token.prefix) and secret.startswith(token.prefix)
    audit = AuditEvent.objects.get(action="api_token.issue")
    assert secret not in str(audit.after) and audit.after["prefix"] == token.prefix
    assert audit.master == follower_a.master
    # and it works
    response = client.get("/api/followers/copy-trades", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200


def test_list_shows_prefixes_never_secrets(follower_a):
    secret, _ = _run("fl_alice")
    listing, _ = _run("fl_alice", "--list")
    assert secret[:11] in listing and secret not in listing
    assert "active" in listing


def test_revoke_by_prefix_is_audited_and_refuses_the_token(client, follower_a):
    secret, _ = _run("fl_alice")
    prefix = ApiToken.objects.get(user=follower_a.user).prefix
    out, _ = _run("fl_alice", "--revoke", prefix)
    assert "Revoked 1" in out
    assert AuditEvent.objects.filter(action="api_token.revoke").count() == 1
    response = client.get("/api/followers/copy-trades", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 401
    with pytest.raises(CommandError):
        _run("fl_alice", "--revoke", prefix)


def test_revoke_all(follower_a):
    _run("fl_alice")
    _run("fl_alice")
    out, _ = _run("fl_alice", "--revoke-all")
    assert "Revoked 2" in out
    assert not ApiToken.objects.filter(revoked_at__isnull=True).exists()


def test_unknown_user_and_staff_are_refused(staff):
    with pytest.raises(CommandError, match="No user"):
        _run("nobody")
    with pytest.raises(CommandError, match="masters and followers"):
        _run("staff")
