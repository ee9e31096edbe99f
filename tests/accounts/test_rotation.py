"""`manage.py rotate_credentials`: every stored secret re-encrypted under the newest key,
audited, idempotent; afterwards the secrets decrypt with the new key alone and not with the old
keys alone."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from accounts import crypto, services
from accounts.models import BrokerAccount
from tests.factories import BrokerAccountFactory
from trading.models import AuditEvent, BrokerSession

pytestmark = pytest.mark.django_db

SECRETS = {
    "api_key": "rotate-me-api-key-000111222333",
    "app_code": "RotateApp77",
    "api_secret": "rotate-me-api-secret-444555666",
}


def _account_with_everything() -> BrokerAccount:
    account = BrokerAccountFactory(api_key=SECRETS["api_key"])
    account.set_app_code(SECRETS["app_code"])
    account.set_api_secret(SECRETS["api_secret"])
    account.save()
    token, _hint = crypto.seal("session-token-abcdef-123456")
    BrokerSession.objects.create(account=account, state="ready", session_token_encrypted=token)
    return account


def test_rotation_finds_every_encrypted_column():
    columns = {
        f"{model._meta.label}.{name}"
        for model, names in services.encrypted_columns()
        for name in names
    }
    assert {
        "accounts.BrokerAccount.api_key_encrypted",
        "accounts.BrokerAccount.app_code_encrypted",
        "accounts.BrokerAccount.api_secret_encrypted",
        "trading.BrokerSession.session_token_encrypted",
    } <= columns


def test_rotate_credentials_moves_every_secret_to_the_newest_key(settings):
    old_keys = list(settings.CREDENTIAL_KEYS)
    account = _account_with_everything()
    empty = BrokerAccountFactory(client_id="EMPTY01")
    empty.wipe_credentials()
    empty.save()
    before = BrokerAccount.objects.get(pk=account.pk)

    new_key = Fernet.generate_key().decode()
    settings.CREDENTIAL_KEYS = [new_key, *old_keys]
    out = io.StringIO()
    call_command("rotate_credentials", stdout=out)
    assert "Rotated 4 value(s); 0 already under the newest key; 0 failed." in out.getvalue()

    after = BrokerAccount.objects.get(pk=account.pk)
    assert after.api_key_encrypted != before.api_key_encrypted
    assert BrokerAccount.objects.get(pk=empty.pk).api_key_encrypted == ""

    # Only the new key is needed now ...
    settings.CREDENTIAL_KEYS = [new_key]
    fresh = BrokerAccount.objects.get(pk=account.pk)
    assert fresh.api_key().reveal() == SECRETS["api_key"]  # type: ignore[union-attr]
    assert fresh.app_code().reveal() == SECRETS["app_code"]  # type: ignore[union-attr]
    assert fresh.api_secret().reveal() == SECRETS["api_secret"]  # type: ignore[union-attr]
    session = BrokerSession.objects.get(account=account)
    assert (
        crypto.open_sealed(session.session_token_encrypted).reveal()
        == "session-token-abcdef-123456"
    )  # type: ignore[union-attr]
    # ... and the old keys alone no longer open anything.
    settings.CREDENTIAL_KEYS = old_keys
    with pytest.raises(crypto.CredentialDecryptionError):
        BrokerAccount.objects.get(pk=account.pk).api_key()

    event = AuditEvent.objects.get(action="credentials.rotate")
    assert event.actor is None and event.actor_repr == "manage.py rotate_credentials"
    assert event.after["rotated"] == 4 and event.after["failed"] == []
    assert SECRETS["api_key"] not in str(event.after)


def test_rotate_credentials_is_idempotent(settings):
    _account_with_everything()
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode(), *settings.CREDENTIAL_KEYS]
    call_command("rotate_credentials", stdout=io.StringIO())
    snapshot = list(BrokerAccount.objects.values_list("api_key_encrypted", flat=True))
    out = io.StringIO()
    call_command("rotate_credentials", stdout=out)
    assert "Rotated 0 value(s); 4 already under the newest key; 0 failed." in out.getvalue()
    assert list(BrokerAccount.objects.values_list("api_key_encrypted", flat=True)) == snapshot
    assert AuditEvent.objects.filter(action="credentials.rotate").count() == 2


def test_rotate_credentials_reports_a_secret_no_key_can_open(settings):
    account = _account_with_everything()
    stranger = Fernet(Fernet.generate_key()).encrypt(b"unknown").decode()
    BrokerAccount.objects.filter(pk=account.pk).update(api_secret_encrypted=stranger)
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode(), *settings.CREDENTIAL_KEYS]
    err = io.StringIO()
    with pytest.raises(CommandError, match="could not be decrypted"):
        call_command("rotate_credentials", stdout=io.StringIO(), stderr=err)
    assert f"accounts.BrokerAccount#{account.pk}.api_secret_encrypted" in err.getvalue()
    # The unreadable value is left alone; the others were rotated.
    assert BrokerAccount.objects.get(pk=account.pk).api_secret_encrypted == stranger
    event = AuditEvent.objects.get(action="credentials.rotate")
    assert event.after["rotated"] == 3 and len(event.after["failed"]) == 1


def test_a_value_changed_during_rotation_is_not_overwritten(settings, monkeypatch):
    """The swap is a conditional UPDATE: if the web wrote a new key meanwhile, we keep it."""
    account = _account_with_everything()
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode(), *settings.CREDENTIAL_KEYS]
    real_rotate = crypto.rotate
    changed = {"done": False}

    def rotate_while_the_master_saves_a_new_key(token: str) -> str:
        if not changed["done"]:
            changed["done"] = True
            fresh = BrokerAccount.objects.get(pk=account.pk)
            fresh.set_api_key("brand-new-key-saved-meanwhile-1")
            fresh.save()
        return real_rotate(token)

    monkeypatch.setattr(crypto, "rotate", rotate_while_the_master_saves_a_new_key)
    services.rotate_credentials(actor_repr="test")
    fresh = BrokerAccount.objects.get(pk=account.pk)
    assert fresh.api_key().reveal() == "brand-new-key-saved-meanwhile-1"  # type: ignore[union-attr]
    assert crypto.is_current(fresh.api_key_encrypted)
