"""Logging helpers: structured key=value lines and a filter that masks secrets."""

from __future__ import annotations

import json
import logging
import re

from copytrade.lib.secret import mask

# Header and field shapes that carry credentials, masked even when the value was never
# wrapped in a Secret (for example a token echoed back inside a broker error body).
_PATTERNS = [
    re.compile(
        r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?bearer\s+)([^\s'\",}]+(?:\s+[^\s'\",}]+)?)"
    ),
    re.compile(
        r"(?i)((?:api_?key|api_?secret|apisecret|secret_?key|password|session_?id|sessionID|"
        r"userSession|checkSum|userData|encKey|orderToken|susertoken)['\"]?\s*[:=]\s*['\"]?)"
        r"([^\s'\",}&]+)"
    ),
]


def scrub(text: str) -> str:
    text = mask(text)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "****", text)
    return text


class SecretMaskingFilter(logging.Filter):
    """Render the message once, mask secrets in it, and drop the args."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = str(record.msg)
        record.msg = scrub(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


class StructuredFormatter(logging.Formatter):
    """`ts level logger msg key=value ...`; extra fields passed as `extra={"ctx": {...}}`."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            record.levelname,
            record.name,
            json.dumps(record.getMessage()),
        ]
        ctx = getattr(record, "ctx", None)
        if isinstance(ctx, dict):
            parts.extend(f"{key}={json.dumps(value, default=str)}" for key, value in ctx.items())
        line = " ".join(parts)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        return scrub(line)
