from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from accounts import crypto
from accounts.models import BrokerAccount
from tests.factories import BrokerAccountFactory

pytestmark = pytest.mark.django_db

API_KEY = "sk-live-abcdefghijklmnop1234"


def test_api_key_is_not_readable_in_the_raw_column():
    account = BrokerAccountFactory(api_key=API_KEY)
    raw = BrokerAccount.objects.filter(pk=account.pk).values_list("api_key_encrypted", flat=True)
    assert API_KEY not in raw[0]
    assert account.api_key_hint == "1234"


def test_api_key_decrypts_to_a_secret_that_hides_itself():
    account = BrokerAccount.objects.get(pk=BrokerAccountFactory(api_key=API_KEY).pk)
    secret = account.api_key()
    assert secret is not None
    assert secret.reveal() == API_KEY
    assert API_KEY not in repr(secret)
    assert API_KEY not in f"{secret}"


def test_a_new_key_still_decrypts_old_tokens_and_rotation_moves_them(settings):
    account = BrokerAccountFactory(api_key=API_KEY)
    old_token = account.api_key_encrypted
    new_key = Fernet.generate_key().decode()
    settings.CREDENTIAL_KEYS = [new_key, *settings.CREDENTIAL_KEYS]
    rotated = crypto.rotate(old_token)
    assert rotated != old_token
    assert Fernet(new_key.encode()).decrypt(rotated.encode()).decode() == API_KEY
    settings.CREDENTIAL_KEYS = [new_key]
    with pytest.raises(crypto.CredentialDecryptionError):
        crypto.open_sealed(old_token)
    assert crypto.open_sealed(rotated).reveal() == API_KEY  # type: ignore[union-attr]
