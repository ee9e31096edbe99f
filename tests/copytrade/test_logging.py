from __future__ import annotations

import logging

from copytrade.lib.logging import SecretMaskingFilter, scrub
from copytrade.lib.secret import Secret


def test_a_wrapped_secret_is_masked_even_when_formatted_raw_into_a_log_line():
    secret = Secret("super-secret-session-token-9876")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token %s", (secret.reveal(),), None)
    SecretMaskingFilter().filter(record)
    assert "super-secret-session-token" not in record.getMessage()
    assert record.getMessage().endswith("****9876")


def test_authorization_headers_and_named_fields_are_masked():
    line = scrub('headers={"Authorization": "Bearer AB1234 opaque-sess-id"} userData=abcdef123456')
    assert "opaque-sess-id" not in line
    assert "abcdef123456" not in line
