"""Export ids → Telethon *marked* peer ids, so imported facts get the same event ids as live ones.

The export writes a chat's ``id`` bare (no ``-100`` prefix) and peers in messages as ``"user123"``,
``"channel123"`` or ``"chat123"`` (tdesktop ``export_output_json.cpp``, ``push(PeerId)``); very old
exports wrote a bare number for a user. Telethon marks users ``id``, basic groups ``-id`` and
channels/supergroups ``-1000000000000 - id`` (``telethon.utils.get_peer_id``).
"""

from __future__ import annotations

from typing import Final

from schemas.events import ChatKind, SenderKind
from schemas.ids import CHANNEL_ID_OFFSET

# Export chat ``type`` → our chat kind and how the bare id is marked ("user", "chat" or "channel").
CHAT_TYPES: Final[dict[str, tuple[ChatKind, SenderKind]]] = {
    "saved_messages": ("saved", "user"),
    "replies": ("bot", "user"),
    "personal_chat": ("private", "user"),
    "bot_chat": ("bot", "user"),
    "private_group": ("group", "chat"),
    "private_supergroup": ("supergroup", "channel"),
    "public_supergroup": ("supergroup", "channel"),
    "private_channel": ("channel", "channel"),
    "public_channel": ("channel", "channel"),
}
_PREFIXES: Final[tuple[tuple[str, SenderKind], ...]] = (
    ("user", "user"),
    ("channel", "channel"),
    ("chat", "chat"),
)


def mark(bare_id: int, kind: SenderKind) -> int:
    """The marked id of a bare peer id of ``kind``."""
    if kind == "channel":
        return CHANNEL_ID_OFFSET - bare_id
    if kind == "chat":
        return -bare_id
    return bare_id


def kind_of_marked(marked_id: int) -> SenderKind:
    """Which kind of peer a marked id names."""
    if marked_id < CHANNEL_ID_OFFSET:
        return "channel"
    return "chat" if marked_id < 0 else "user"


def as_int(value: object) -> int | None:
    """An integer from an export value that may be an int or a string of digits (older exports)."""
    if type(value) is int:
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


_peer_cache: dict[str, tuple[int, SenderKind] | None] = {}
_PEER_CACHE_MAX: Final = 100_000


def parse_peer(value: object) -> tuple[int, SenderKind] | None:
    """``"user123"``/``"channel123"``/``"chat123"`` (or a bare number: a user) → (marked id, kind)."""
    if isinstance(value, str):
        # Senders repeat on most messages; the parse is pure, so a bounded memo is safe.
        try:
            return _peer_cache[value]
        except KeyError:
            pass
        if len(_peer_cache) >= _PEER_CACHE_MAX:
            _peer_cache.clear()
        found = _parse_peer(value)
        _peer_cache[value] = found
        return found
    return _parse_peer(value)


def _parse_peer(value: object) -> tuple[int, SenderKind] | None:
    if isinstance(value, str):
        for prefix, kind in _PREFIXES:
            if value.startswith(prefix):
                bare = as_int(value[len(prefix) :])
                if bare is None or bare <= 0:
                    return None
                return mark(bare, kind), kind
    number = as_int(value)
    if number is None or number == 0:
        return None
    if number < 0:  # already marked (written by a tool, not by tdesktop)
        return number, kind_of_marked(number)
    return number, "user"


def chat_identity(raw_type: object, raw_id: object) -> tuple[int, ChatKind] | None:
    """The marked chat id and kind of an export chat header, or None if they cannot be told."""
    bare = as_int(raw_id)
    if bare is None or bare == 0:
        return None
    known = CHAT_TYPES.get(raw_type) if isinstance(raw_type, str) else None
    if bare < 0:  # already marked
        peer_kind = kind_of_marked(bare)
        if known is not None and known[1] == peer_kind:
            return bare, known[0]
        return bare, default_chat_kind(bare)
    if known is None:
        return None
    chat_kind, peer_kind = known
    return mark(bare, peer_kind), chat_kind


def default_chat_kind(marked_id: int) -> ChatKind:
    """Our best guess of a chat's kind from its marked id alone (used with ``--chat-id``)."""
    peer_kind = kind_of_marked(marked_id)
    return "supergroup" if peer_kind == "channel" else "group" if peer_kind == "chat" else "private"
