"""Media descriptors and reactions from an export message (no bytes are read, paths are not followed).

File fields hold a path relative to the export or a placeholder sentence such as ``"(File not
included. Change data exporting settings to download.)"`` (tdesktop ``pushPath``); the export has
no Telegram file ids, so ``file_unique_id`` stays empty.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Final

from ingest.export.peers import as_int
from ingest.export.text import plain_text
from schemas.events import Media, MediaType, ReactionCount

# Export ``media_type`` → our media type (documents without one are plain documents).
_DOCUMENT_TYPES: Final[dict[str, MediaType]] = {
    "sticker": "sticker",
    "video_message": "video_note",
    "voice_message": "voice",
    "animation": "animation",
    "video_file": "video",
    "audio_file": "audio",
}


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _file_name(message: dict[str, object]) -> str | None:
    name = _str(message.get("file_name"))
    if name is not None:
        return name
    path = _str(message.get("file"))
    if path is None or path.startswith("("):  # a placeholder, not a path
        return None
    return PurePosixPath(path).name or None


def _spoiler(message: dict[str, object]) -> bool:
    return message.get("media_spoiler") is True


_MEDIA_KEYS: Final = frozenset(
    {
        "photo",
        "file",
        "media_type",
        "poll",
        "location_information",
        "place_name",
        "contact_information",
        "game_title",
        "invoice_information",
        "giveaway_information",
        "giveaway_results",
        "paid_stars_amount",
    }
)


def media_of(message: dict[str, object]) -> Media | None:
    """The media descriptor of a message, or None for a text-only message."""
    if _MEDIA_KEYS.isdisjoint(message):
        return None
    if "photo" in message:
        return Media(
            type="photo",
            size=as_int(message.get("photo_file_size")),
            width=as_int(message.get("width")),
            height=as_int(message.get("height")),
            spoiler=_spoiler(message),
        )
    if "file" in message or "media_type" in message:
        raw_type = message.get("media_type")
        kind = (
            _DOCUMENT_TYPES.get(raw_type, "document") if isinstance(raw_type, str) else "document"
        )
        return Media(
            type=kind,
            size=as_int(message.get("file_size")),
            mime_type=_str(message.get("mime_type")),
            file_name=_file_name(message),
            duration_s=_number(message.get("duration_seconds")),
            width=as_int(message.get("width")),
            height=as_int(message.get("height")),
            emoji=_str(message.get("sticker_emoji")),
            title=_str(message.get("title")),
            performer=_str(message.get("performer")),
            spoiler=_spoiler(message),
        )
    poll = message.get("poll")
    if isinstance(poll, dict):
        answers = poll.get("answers")
        return Media(
            type="poll",
            poll_question=plain_text(poll.get("question")) or None,
            poll_answers=tuple(plain_text(a.get("text")) for a in answers if isinstance(a, dict))
            if isinstance(answers, list)
            else (),
        )
    location = message.get("location_information")
    if "location_information" in message or "place_name" in message:
        where = location if isinstance(location, dict) else {}
        return Media(
            type="location",
            latitude=_number(where.get("latitude")),
            longitude=_number(where.get("longitude")),
            title=_str(message.get("place_name")),
            duration_s=_number(message.get("live_location_period_seconds")),
        )
    contact = message.get("contact_information")
    if isinstance(contact, dict):
        name = " ".join(
            p for p in (_str(contact.get("first_name")), _str(contact.get("last_name"))) if p
        )
        return Media(type="contact", title=name or None)  # the phone number stays out of the log
    if "game_title" in message:
        return Media(type="other", title=_str(message.get("game_title")))
    invoice = message.get("invoice_information")
    if isinstance(invoice, dict):
        return Media(type="other", title=_str(invoice.get("title")))
    for key in ("giveaway_information", "giveaway_results", "paid_stars_amount"):
        if key in message:
            return Media(type="other", title=key)
    return None


def reactions_of(message: dict[str, object]) -> tuple[ReactionCount, ...]:
    """The reaction summary: emoji, custom emoji (by document id) and paid (stars) reactions."""
    raw = message.get("reactions")
    if not isinstance(raw, list):
        return ()
    out: list[ReactionCount] = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        count = as_int(item.get("count"))
        if count is None:
            continue
        kind = item.get("type")
        emoji = item.get("emoji")
        if kind == "emoji" and isinstance(emoji, str):
            out.append(ReactionCount(count=count, emoji=emoji))
        elif kind == "custom_emoji":
            out.append(ReactionCount(count=count, custom_emoji_id=as_int(item.get("document_id"))))
        elif kind == "paid":
            out.append(ReactionCount(count=count, paid=True))
    return tuple(out)
