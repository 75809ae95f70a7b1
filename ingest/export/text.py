"""Message text and formatting entities from the export's ``text`` / ``text_entities``.

The export splits a message's text into parts ``{type, text, …}`` (plain parts may be bare strings in
``text``); it has no offsets. We rebuild Telegram's offsets and lengths in UTF-16 code units from the
part texts. Entity type names follow the live converter (Telethon class names in snake case), so a
message gets the same entities whether imported or crawled: ``link`` → ``url``, ``strikethrough`` →
``strike``; the other export names already match.
"""

from __future__ import annotations

from typing import Final

from ingest.export.peers import as_int
from schemas.events import Entity

_TYPE_NAMES: Final = {"link": "url", "strikethrough": "strike"}


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (characters beyond the BMP count twice)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def plain_text(value: object) -> str:
    """The text of a ``text``-like value: a string, or a list of strings and ``{text}`` parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(
            p if isinstance(p, str) else str(p.get("text", "")) if isinstance(p, dict) else ""
            for p in value
        )
    return ""


def is_odd_text(value: object) -> bool:
    """True for a ``text`` that is neither a string, a list of parts nor absent (no tdesktop writes
    one; some tools write a number or a single part object)."""
    return value is not None and not isinstance(value, str | list)


def odd_text(value: object) -> str:
    """The text of an odd ``text`` value: a number as written, an object's ``text`` part."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return plain_text([value])
    return ""


def _entity(part: dict[str, object], kind: str, offset: int, length: int) -> Entity:
    url = part.get("href")
    language = part.get("language")
    return Entity(
        type=_TYPE_NAMES.get(kind, kind),
        offset=offset,
        length=length,
        url=url if isinstance(url, str) and url else None,
        user_id=as_int(part.get("user_id")) if kind == "mention_name" else None,
        language=language if isinstance(language, str) and language else None,
        custom_emoji_id=as_int(part.get("document_id")) if kind == "custom_emoji" else None,
    )


def text_and_entities(message: dict[str, object]) -> tuple[str, tuple[Entity, ...]]:
    """The message text and its entities with UTF-16 offsets; ``text_entities`` wins over ``text``."""
    text = message.get("text")
    if isinstance(text, str):
        return text, ()  # tdesktop writes a bare string only for a message without entities
    parts = message.get("text_entities")
    if not isinstance(parts, list) or (not parts and text):
        parts = text  # older exports have only ``text``
    if not isinstance(parts, list):
        return odd_text(text), ()
    texts: list[str] = []
    entities: list[Entity] = []
    offset = 0
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
            offset += utf16_len(part)
            continue
        if not isinstance(part, dict):
            raise ValueError(f"text part is a {type(part).__name__}, not a string or object")
        text = part.get("text", "")
        if not isinstance(text, str):
            text = plain_text(text)
        kind = part.get("type", "plain")
        length = utf16_len(text)
        if isinstance(kind, str) and kind != "plain" and length > 0:
            entities.append(_entity(part, kind, offset, length))
        texts.append(text)
        offset += length
    return "".join(texts), tuple(entities)
