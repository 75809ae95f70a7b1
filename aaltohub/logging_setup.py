"""Process-wide logging: text or JSON lines on stderr, with secrets scrubbed from every record."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Final, TextIO

import msgspec
from pydantic import SecretStr

from aaltohub.settings import Settings

# user:password@ in any URL-like text (postgresql://u:p@h, nats://u:p@h)
_URL_CREDENTIALS: Final = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@"
)
# Tokens in text a library logs: query parameters, bearer headers and subprotocols, and anything
# shaped like a JWT (three base64url parts, the first a JSON header: "eyJ").
_TOKEN_PATTERNS: Final = (
    re.compile(
        r"(?i)(?P<keep>[?&;](?:access_token|token|apikey|api_key|password|secret)=)[^&\s\"']+"
    ),
    re.compile(r"(?i)(?P<keep>\bbearer[ .])[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?P<keep>)\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
)
_MASK: Final = "***"


def secret_values(settings: Settings) -> list[str]:
    """The values of every ``SecretStr`` setting that is set (non-empty)."""
    values: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            values.append(value.get_secret_value())
    return values


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with URL passwords, tokens and the given secret values masked."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{_MASK}@", text)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(lambda m: f"{m['keep']}{_MASK}", text)
    for secret in secrets:
        if len(secret) >= 4:  # masking one- to three-character values would garble ordinary text
            text = text.replace(secret, _MASK)
    return text


class SecretScrubber(logging.Filter):
    """Masks secrets in the formatted message (and exception text) of every record."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message by its scrubbed rendering; never drops a record."""
        record.msg = scrub(record.getMessage(), self._secrets)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub(
                logging.Formatter().formatException(record.exc_info), self._secrets
            )
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg (+ exc)."""

    _encoder: Final = msgspec.json.Encoder()

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        entry: dict[str, str] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)  # set by the API's request middleware
        if request_id:
            entry["request_id"] = str(request_id)
        if record.exc_text:
            entry["exc"] = record.exc_text
        elif record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return self._encoder.encode(entry).decode()


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> logging.Handler:
    """Install one handler on the root logger per ``AALTOHUB_LOG_FORMAT``/``AALTOHUB_LOG_LEVEL``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretScrubber(secret_values(settings)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    return handler
