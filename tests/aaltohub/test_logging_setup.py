"""Logging never shows secrets, in text or JSON format."""

from __future__ import annotations

import io
import json
import logging

from aaltohub.logging_setup import configure_logging
from aaltohub.settings import load_settings


def _emit(fmt: str) -> str:
    settings = load_settings(
        log_format=fmt,
        admin_token="tok-very-secret-0123456789abcdefghijk",
        database_url="postgresql://u:pw123@h/db",
    )
    stream = io.StringIO()
    handler = configure_logging(settings, stream=stream)
    try:
        logging.getLogger("t").warning(
            "token %s url %s", "tok-very-secret-0123456789abcdefghijk", "postgresql://u:pw123@h/db"
        )
    finally:
        logging.getLogger().removeHandler(handler)
    return stream.getvalue()


def test_text_logs_mask_secret_values_and_url_passwords() -> None:
    out = _emit("text")
    assert "tok-very-secret-0123456789abcdefghijk" not in out and "pw123" not in out
    assert "postgresql://u:***@h/db" in out


def test_json_logs_are_one_object_per_line_without_secrets() -> None:
    entry = json.loads(_emit("json"))
    assert entry["level"] == "WARNING" and entry["logger"] == "t"
    assert "tok-very-secret-0123456789abcdefghijk" not in entry["msg"] and "***" in entry["msg"]
