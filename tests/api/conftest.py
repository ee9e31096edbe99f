from __future__ import annotations

import pytest
from django.test import Client

from api import tokens


def bearer(user) -> dict[str, str]:  # type: ignore[no-untyped-def]
    issued = tokens.issue(user=user, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}


@pytest.fixture
def api_client() -> Client:
    return Client()
