"""Hand-built export pieces for the tests (written from the format description, not copied)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PLACEHOLDER = "(File not included. Change data exporting settings to download.)"


def msg(mid: int, text: Any = "hello", /, **fields: Any) -> dict[str, Any]:
    """A current-format regular message (tdesktop ≥ 4.x: ``date_unixtime``, ``text_entities``)."""
    base: dict[str, Any] = {
        "id": mid,
        "type": "message",
        "date": "2024-03-01T12:00:00",
        "date_unixtime": str(1_709_294_400 + mid),
        "from": "Alice",
        "from_id": "user111",
        "text": text,
        "text_entities": [{"type": "plain", "text": text}]
        if isinstance(text, str) and text
        else [],
    }
    base.update(fields)
    return base


def service(mid: int, action: str | None, /, **fields: Any) -> dict[str, Any]:
    """A service message with ``action`` (None: a custom action without the key)."""
    base: dict[str, Any] = {
        "id": mid,
        "type": "service",
        "date": "2024-03-01T12:00:00",
        "date_unixtime": str(1_709_294_400 + mid),
        "actor": "Alice",
        "actor_id": "user111",
        "text": "",
        "text_entities": [],
    }
    if action is not None:
        base["action"] = action
    base.update(fields)
    return base


def single_chat(
    messages: list[Any],
    *,
    chat_id: int | str = 1_730_156_619,
    chat_type: str = "public_supergroup",
    name: str | None = "Test group",
) -> dict[str, Any]:
    """A single-chat export object."""
    chat: dict[str, Any] = {}
    if name is not None:
        chat["name"] = name
    chat.update(type=chat_type, id=chat_id, messages=messages)
    return chat


def account(
    chats: list[dict[str, Any]], left: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A full-account export with the sections the importer must skip."""
    data: dict[str, Any] = {
        "about": "Here is the data you requested.",
        "personal_information": {
            "user_id": 42,
            "first_name": "Me",
            "phone_number": "+358 40 000 0000",
        },
        "profile_pictures": [
            {"date": "2020-01-01T00:00:00", "date_unixtime": "1577836800", "photo": PLACEHOLDER}
        ],
        "contacts": {
            "about": "c",
            "list": [{"user_id": 7, "first_name": "A", "date": "2020-01-01T00:00:00"}],
        },
        "frequent_contacts": {
            "about": "f",
            "list": [{"id": 7, "category": "people", "type": "user", "name": "A", "rating": 1.0}],
        },
        "chats": {"about": "chats", "list": chats},
    }
    if left is not None:
        data["left_chats"] = {"about": "left", "list": left}
    data["other_data"] = {"about": "o", "changes_log": [{"a": 1}]}
    return data


def write(path: Path, data: Any) -> Path:
    """Write ``data`` as tdesktop does (indented, UTF-8, non-ASCII kept)."""
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path
