"""Upcasters: functions that lift an old event payload one schema version up.

Old records are never rewritten in the log; the codec runs the chain of upcasters on read.
A registry maps ``(kind, from_version)`` to a function taking and returning the plain JSON object.
When a kind's shape or id rule changes, raise its class's ``schema_version`` default in
``schemas.events`` and register the ``(kind, old_version)`` step here.

Version 2 of the message kinds (posted, edited, reactions, media stored) changed only the event id
rule (``schemas.ids``): the id of a basic-group or private-chat message includes the observing
account, and an edit's id digests its formatting entities. The v1 → v2 steps recompute the id from
the payload, so an old log replays into exactly the events today's ingest writes (and a re-import
recognises them). A payload too malformed to recompute is left as it is for the decoder to reject.

Version 2 of ``chat.updated`` names the update's time in its id, so a chat renamed and renamed
back within JetStream's dedup window keeps both changes; the step recomputes the id.

Version 3 of ``message.posted`` lets a snapshot say its dates are local (``local_date``): an
export's times without offset, read in some zone. Imports before v3 did not record it, so every v2
post from an import is lifted to a local reading in an unrecorded zone (the lowest rank): a
re-import with the right ``--tz`` then corrects its dates (docs/decisions/041-corrected-export-dates.md).
Exact dates cannot be told apart from local ones in those payloads; a re-import of a file with
``date_unixtime`` appends nothing where the dates agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final

import msgspec

from schemas import ids
from schemas.events import ChatInfo, Event, MessageSnapshot, ReactionCount

JsonObject = dict[str, object]
Upcaster = Callable[[JsonObject], JsonObject]


def _identity(raw: JsonObject) -> tuple[int, str] | None:
    chat_id, account = raw.get("chat_id"), raw.get("account")
    if isinstance(chat_id, int) and not isinstance(chat_id, bool) and isinstance(account, str):
        return chat_id, account
    return None


def _snapshot(raw: JsonObject) -> MessageSnapshot | None:
    try:
        return msgspec.convert(raw.get("message"), MessageSnapshot, strict=False)
    except msgspec.ValidationError:
        return None


def _int(raw: JsonObject, key: str) -> int | None:
    value = raw.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def posted_v1_to_v2(raw: JsonObject) -> JsonObject:
    """``message.posted`` v1 → v2: the id of a non-channel message includes the account."""
    who, snap = _identity(raw), _snapshot(raw)
    if who is not None and snap is not None:
        raw["event_id"] = ids.posted_id(who[0], snap.message_id, account=who[1])
    return raw


def posted_v2_to_v3(raw: JsonObject) -> JsonObject:
    """``message.posted`` v2 → v3: a post from an import has local dates in an unrecorded zone."""
    message = raw.get("message")
    if raw.get("source") != "import" or not isinstance(message, dict) or "local_date" in message:
        return raw
    raw["message"] = {**message, "local_date": {}}
    who, snap = _identity(raw), _snapshot(raw)
    try:
        observed_at = msgspec.convert(raw.get("observed_at"), datetime, strict=False)
    except msgspec.ValidationError:
        return raw
    if who is not None and snap is not None:
        raw["event_id"] = ids.posted_event_id(who[0], snap, account=who[1], observed_at=observed_at)
    return raw


def chat_updated_v1_to_v2(raw: JsonObject) -> JsonObject:
    """``chat.updated`` v1 → v2: the id names the update's time (A → B → A is three facts)."""
    try:
        chat = msgspec.convert(raw.get("chat"), ChatInfo, strict=False)
        observed_at = msgspec.convert(raw.get("observed_at"), datetime, strict=False)
    except msgspec.ValidationError:
        return raw
    raw["event_id"] = ids.chat_updated_id(chat, observed_at=observed_at)
    return raw


def edited_v1_to_v2(raw: JsonObject) -> JsonObject:
    """``message.edited`` v1 → v2: account-scoped outside channels, formatting digested."""
    who, snap = _identity(raw), _snapshot(raw)
    if who is not None and snap is not None:
        raw["event_id"] = ids.edited_id(who[0], snap, account=who[1])
    return raw


def reactions_v1_to_v2(raw: JsonObject) -> JsonObject:
    """``message.reactions`` v1 → v2: the id of a non-channel message includes the account."""
    who, message_id = _identity(raw), _int(raw, "message_id")
    try:
        reactions = msgspec.convert(raw.get("reactions", []), tuple[ReactionCount, ...])
    except msgspec.ValidationError:
        return raw
    if who is not None and message_id is not None:
        raw["event_id"] = ids.reactions_id(who[0], message_id, reactions, account=who[1])
    return raw


def media_stored_v1_to_v2(raw: JsonObject) -> JsonObject:
    """``message.media_stored`` v1 → v2: the id of a non-channel message includes the account."""
    who, message_id, sha256 = _identity(raw), _int(raw, "message_id"), raw.get("sha256")
    if who is not None and message_id is not None and isinstance(sha256, str):
        raw["event_id"] = ids.media_stored_id(who[0], message_id, sha256, account=who[1])
    return raw


UPCASTERS: Final[Mapping[tuple[str, int], Upcaster]] = {
    ("message.posted", 1): posted_v1_to_v2,
    ("message.posted", 2): posted_v2_to_v3,
    ("message.edited", 1): edited_v1_to_v2,
    ("message.reactions", 1): reactions_v1_to_v2,
    ("message.media_stored", 1): media_stored_v1_to_v2,
    ("chat.updated", 1): chat_updated_v1_to_v2,
}


# Steps that change nothing but the version for the events they name: the codec lifts those
# without re-encoding (a v2 post that is not from an import is already a v3 one).
IDENTITY_STEPS: Final[Mapping[tuple[str, int], Callable[[Event], bool]]] = {
    ("message.posted", 2): lambda event: event.source != "import",
}


def upcast(
    raw: JsonObject,
    *,
    kind: str,
    version: int,
    target: int,
    upcasters: Mapping[tuple[str, int], Upcaster],
) -> JsonObject:
    """Apply the upcaster chain from ``version`` to ``target``; KeyError names a missing step."""
    while version < target:
        step = upcasters.get((kind, version))
        if step is None:
            raise KeyError(f"no upcaster for {kind!r} from schema_version {version}")
        raw = step(dict(raw))
        version += 1
        raw["schema_version"] = version
    return raw
