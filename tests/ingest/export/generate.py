"""Synthetic Telegram Desktop exports for tests and the bench: written message by message (bounded memory)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import msgspec

BASE_UNIX: Final = 1_700_000_000
_WORDS: Final = (
    "hei",
    "moi",
    "kiitos",
    "Aalto",
    "kurssi",
    "tentti",
    "päivä",
    "huomenna",
    "😀",
    "deadline",
    "lecture",
    "room",
    "Otaniemi",
    "sauna",
    "🎉",
    "exam",
    "Привет",
    "question",
    "answer",
    "link",
)
_ENCODER: Final = msgspec.json.Encoder()


def _text(i: int, words: int = 14) -> str:
    return " ".join(_WORDS[(i * 7 + k * 3) % len(_WORDS)] for k in range(words))


def synthetic_message(i: int) -> dict[str, Any]:
    """Message number ``i`` (id ``i``) of a generated chat: a realistic mix of the export's shapes."""
    date = BASE_UNIX + i * 30
    message: dict[str, Any] = {
        "id": i,
        "type": "message",
        "date": "2023-11-14T22:13:20",
        "date_unixtime": str(date),
    }
    if i % 50 == 0:
        message.update(
            type="service",
            actor=f"User {i % 97}",
            actor_id=f"user{1000 + i % 97}",
            action="join_group_by_link",
            inviter="Admin",
            text="",
            text_entities=[],
        )
        return message
    message["from"] = f"User {i % 97}"
    message["from_id"] = f"user{1000 + i % 97}"
    if i % 11 == 0:
        message["edited"] = "2023-11-14T22:20:00"
        message["edited_unixtime"] = str(date + 60)
    if i % 7 == 0 and i > 1:
        message["reply_to_message_id"] = i - 1
    if i % 13 == 0:
        message.update(
            photo="(File not included. Change data exporting settings to download.)",
            photo_file_size=123_456,
            width=1280,
            height=720,
        )
    elif i % 17 == 0:
        message.update(
            file="(File not included. Change data exporting settings to download.)",
            file_size=40_000,
            media_type="sticker",
            sticker_emoji="😀",
            width=512,
            height=512,
        )
    if i % 10 == 0:
        plain = _text(i, 8)
        parts: list[Any] = [
            plain + " ",
            {"type": "bold", "text": "tärkeä"},
            " see ",
            {"type": "link", "text": "https://aalto.fi"},
            " ",
            {"type": "mention", "text": "@someone"},
        ]
        message["text"] = parts
        message["text_entities"] = [
            {"type": "plain", "text": plain + " "},
            {"type": "bold", "text": "tärkeä"},
            {"type": "plain", "text": " see "},
            {"type": "link", "text": "https://aalto.fi"},
            {"type": "plain", "text": " "},
            {"type": "mention", "text": "@someone"},
        ]
    else:
        text = _text(i)
        message["text"] = text
        message["text_entities"] = [{"type": "plain", "text": text}]
    if i % 9 == 0:
        message["reactions"] = [{"type": "emoji", "count": 1 + i % 5, "emoji": "👍"}]
    return message


def _messages(count: int, start_id: int = 1) -> Iterator[bytes]:
    for i in range(start_id, start_id + count):
        yield _ENCODER.encode(synthetic_message(i))


def write_single_chat_export(
    path: Path,
    *,
    messages: int,
    chat_id: int = 1_730_156_619,
    chat_type: str = "public_supergroup",
    name: str = "Generated group",
) -> Path:
    """Write a single-chat export (``{name, type, id, messages}``) with ``messages`` messages."""
    with path.open("wb") as f:
        f.write(
            b'{\n "name": '
            + _ENCODER.encode(name)
            + b',\n "type": '
            + _ENCODER.encode(chat_type)
            + b',\n "id": '
            + str(chat_id).encode()
            + b',\n "messages": ['
        )
        first = True
        for data in _messages(messages):
            f.write(b"\n  " if first else b",\n  ")
            f.write(data)
            first = False
        f.write(b"\n ]\n}\n")
    return path


def write_account_export(
    path: Path, *, chats: int, messages_per_chat: int, left_chats: int = 0
) -> Path:
    """Write a full-account export: personal info and contacts (skipped), ``chats.list`` and ``left_chats.list``."""
    with path.open("wb") as f:
        f.write(
            b'{\n "about": "Here is the data you requested.",\n "personal_information": '
            b'{"user_id": 42, "first_name": "Me", "phone_number": "+358 00 000"},\n'
            b' "contacts": {"about": "c", "list": [{"user_id": 7, "first_name": "A", '
            b'"date": "2020-01-01T00:00:00", "date_unixtime": "1577836800"}]},\n'
        )
        for section, count, offset in (("chats", chats, 0), ("left_chats", left_chats, 1000)):
            if count == 0:
                continue
            f.write(b' "' + section.encode() + b'": {"about": "x", "list": [')
            for c in range(count):
                chat_id = 1_500_000_000 + offset + c
                f.write(b"\n  " if c == 0 else b",\n  ")
                f.write(
                    b'{"name": "Group '
                    + str(c).encode()
                    + b'", "type": "private_supergroup", "id": '
                    + str(chat_id).encode()
                    + b', "messages": ['
                )
                for k, data in enumerate(_messages(messages_per_chat)):
                    f.write(b"\n   " if k == 0 else b",\n   ")
                    f.write(data)
                f.write(b"]}")
            f.write(b"\n ]},\n")
        f.write(b' "other_data": {"about": "o"}\n}\n')
    return path
