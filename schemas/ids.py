"""Deterministic event ids.

An ``event_id`` names a *Telegram fact*, not an observation of it, so the same fact seen twice
(live and gap-fill, live and a Desktop export import, a retried append) gets the same id and is
stored once by JetStream's ``Nats-Msg-Id`` dedup and applied once by the projectors.

Rule: ``<prefix>-<hex>`` where ``hex`` is the 128-bit BLAKE2b digest of the fact's identifying parts
joined with the unit separator ``\\x1f``. The parts per fact:

============================  ==================================================================
fact                          identifying parts
============================  ==================================================================
message posted                ``chat_id, message_id`` (+ ``acct:<account>`` outside channels); a
                              snapshot with local dates (an export without offsets) adds
                              ``local, date rank, zone, date (unix s), observed_at``: each import
                              run's reading of the dates is its own fact, and the one the
                              projections show is the best-ranked, latest one
message edited                ``chat_id, message_id, edit_date (unix s), digest(text, media id),
                              digest(entities)`` (+ ``acct:<account>`` outside channels)
message deleted               ``scope, message_id`` where ``scope`` is the chat id for channels and
                              ``acct:<account>`` otherwise: basic-group and private message ids are
                              unique per account and their deletes arrive without a chat id, so
                              live and gap-fill produce the same id
reactions updated             ``chat_id, message_id, digest(reactions)`` (+ account outside channels)
counters updated              ``chat_id, message_id, views, forwards, replies`` (+ account outside
                              channels): the same counts re-read by gap-fill are the same fact
media stored                  ``chat_id, message_id, sha256`` (+ account outside channels)
chat discovered / left        ``account, chat_id, generation`` (generation counts re-joins)
chat updated                  ``chat_id, kind, title, username, member count, forum`` (+ the
                              supergroup a basic group migrated to, where set) and its time
                              (``as_of``, else ``observed_at``): a name changed and changed back
                              is two facts
backfill started/progress/    ``account, chat_id, since`` (+ ``last_message_id`` for progress,
completed                     + ``resume_after`` for a start)
gap-fill completed            ``account, chat_id, window_start, window_end``
lifecycle, flood wait, error  a random UUID: each occurrence is its own fact
============================  ==================================================================

The prefix differs per fact type, so different facts never collide even if their parts do.

Message ids of channels and supergroups are numbered per chat; those of basic groups and private
chats are numbered per *account* (unique across all its non-channel chats), so two accounts in one
basic group see the same message under different ids and different messages under the same id. The
identity of a non-channel message therefore includes the observing account: ``message_scope`` is
the part every id and every projection key adds (``""`` for channels). Logs written before this
rule (schema version 1 of the message kinds) are upcast to the new ids on read (``schemas.upcast``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Final

from schemas.events import ChatInfo, MessageSnapshot, ReactionCount, date_rank

CHANNEL_ID_OFFSET: Final = (
    -1_000_000_000_000
)  # Telethon marks channel ids as -100<id> (utils.get_peer_id)
_SEP: Final = "\x1f"


def is_channel_id(chat_id: int) -> bool:
    """True for a marked channel/supergroup id (``-100…``)."""
    return chat_id < CHANNEL_ID_OFFSET


def message_scope(account: str, chat_id: int | None) -> str:
    """Whose numbering a message id belongs to: ``""`` for a channel's (per chat), else the account's."""
    return "" if chat_id is not None and is_channel_id(chat_id) else account


def _scoped(chat_id: int, account: str) -> tuple[object, ...]:
    # Channel ids stay as they were (no extra part), so their events keep their ids across versions.
    scope = message_scope(account, chat_id)
    return (chat_id,) if scope == "" else (chat_id, f"acct:{scope}")


def _digest(parts: Iterable[object]) -> str:
    joined = _SEP.join("" if p is None else str(p) for p in parts)
    return hashlib.blake2b(joined.encode("utf-8"), digest_size=16).hexdigest()


def _make(prefix: str, *parts: object) -> str:
    return f"{prefix}-{_digest(parts)}"


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def content_digest(message: MessageSnapshot) -> str:
    """A digest of what an edit can change that matters for versions: text and media identity."""
    media = message.media
    if (
        media is None
    ):  # most messages: _digest((text, None)) without building the tuple (hot in replays)
        return hashlib.blake2b((message.text + _SEP).encode(), digest_size=16).hexdigest()
    return _digest(
        (message.text, (media.type, media.file_unique_id, media.url, media.poll_question))
    )


def formatting_digest(message: MessageSnapshot) -> str:
    """A digest of the formatting entities: an edit can change only them (bold, links, …)."""
    return _digest(
        (e.type, e.offset, e.length, e.url, e.user_id, e.language, e.custom_emoji_id)
        for e in message.entities
    )


def posted_id(chat_id: int, message_id: int, *, account: str) -> str:
    """Id of the fact "message ``message_id`` exists in ``chat_id``" (as ``account`` numbers it)."""
    return _make("p", *_scoped(chat_id, account), message_id)


def posted_event_id(
    chat_id: int, message: MessageSnapshot, *, account: str, observed_at: datetime
) -> str:
    """Id of a ``MessagePosted`` of ``message``: ``posted_id`` for exact dates; a snapshot whose
    dates are local (``MessageSnapshot.local_date``) is one import run's reading of them, so its id
    names the rank, the zone, the date and the run (``observed_at``): a re-import in another zone
    is a new fact, the same run retried is not (docs/decisions/041-corrected-export-dates.md)."""
    local = message.local_date
    if local is None:
        return posted_id(chat_id, message.message_id, account=account)
    return _make(
        "p",
        *_scoped(chat_id, account),
        message.message_id,
        "local",
        date_rank(message),
        local.zone,
        _epoch(message.date),
        observed_at.isoformat(),
    )


def edited_id(chat_id: int, message: MessageSnapshot, *, account: str) -> str:
    """Id of the fact "the message was edited at ``edit_date`` to this content"."""
    edit_date = message.edit_date or message.date
    return _make(
        "e",
        *_scoped(chat_id, account),
        message.message_id,
        _epoch(edit_date),
        content_digest(message),
        formatting_digest(message),
    )


def deleted_id(*, account: str, chat_id: int | None, message_id: int) -> str:
    """Id of a deletion; channel deletes are scoped by chat, all others by account."""
    scope = str(chat_id) if chat_id is not None and is_channel_id(chat_id) else f"acct:{account}"
    return _make("d", scope, message_id)


def reactions_id(
    chat_id: int, message_id: int, reactions: Iterable[ReactionCount], *, account: str
) -> str:
    """Id of the fact "the message's reactions became this summary"."""
    summary = sorted((r.emoji or "", r.custom_emoji_id or 0, r.paid, r.count) for r in reactions)
    return _make("r", *_scoped(chat_id, account), message_id, summary)


def counters_id(
    chat_id: int,
    message_id: int,
    *,
    views: int | None,
    forwards: int | None,
    replies: int | None,
    account: str,
) -> str:
    """Id of the fact "the message's engagement counters became these"."""
    return _make("n", *_scoped(chat_id, account), message_id, views, forwards, replies)


def media_stored_id(chat_id: int, message_id: int, sha256: str, *, account: str) -> str:
    """Id of the fact "the message's media is stored with this content hash"."""
    return _make("m", *_scoped(chat_id, account), message_id, sha256)


def discovered_id(account: str, chat_id: int, generation: int = 0) -> str:
    """Id of the fact "the account started watching the chat" (``generation`` counts re-joins)."""
    return _make("cd", account, chat_id, generation)


def left_id(account: str, chat_id: int, generation: int = 0) -> str:
    """Id of the fact "the account stopped seeing the chat" for that generation."""
    return _make("cl", account, chat_id, generation)


def chat_updated_id(chat: ChatInfo, *, observed_at: datetime) -> str:
    """Id of the fact "the chat's metadata became this at this time" (``as_of``, else when it was
    observed): live records an update only on a change, so A → B → A is three facts, while an
    import's update (as of the export's newest message) is the same fact on every re-import."""
    parts: tuple[object, ...] = (chat.kind, chat.title, chat.username, chat.member_count)
    # A migration link is part of the fact only where there is one.
    link = () if chat.migrated_to is None else (f"to:{chat.migrated_to}",)
    photo = () if chat.photo_id is None else (f"photo:{chat.photo_id}",)
    at = (chat.as_of or observed_at).isoformat()
    return _make("cu", chat.chat_id, *parts, chat.forum, *link, *photo, f"at:{at}")


def migration_link(chat_id: int, message: MessageSnapshot) -> tuple[int, int] | None:
    """(basic group, supergroup), marked, that a migration service message in ``chat_id`` names:
    in the basic group ``chat_migrate_to`` (its ``channel_id``), in the supergroup
    ``channel_migrate_from`` (its ``chat_id``); None for any other message."""
    action = message.action
    if action is None:
        return None
    key = {"chat_migrate_to": "channel_id", "channel_migrate_from": "chat_id"}.get(action.type)
    value = None if key is None else action.details.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return None
    if action.type == "chat_migrate_to":
        return chat_id, CHANNEL_ID_OFFSET - value
    return -value, chat_id


def chat_photo_change(message: MessageSnapshot) -> tuple[bool, int | None]:
    """Whether a service message changes its chat's photo, and to which photo id (None: removed):
    ``chat_edit_photo`` with a ``photo_id`` (live; an export's names no id and says nothing) or
    ``chat_delete_photo``."""
    action = message.action
    if action is None:
        return False, None
    if action.type == "chat_delete_photo":
        return True, None
    photo = action.details.get("photo_id") if action.type == "chat_edit_photo" else None
    if isinstance(photo, int) and not isinstance(photo, bool):
        return True, photo
    return False, None


def backfill_started_id(
    account: str, chat_id: int, since: datetime, resume_after: int | None
) -> str:
    """Id of a backfill (re)start."""
    return _make("bs", account, chat_id, _epoch(since), resume_after)


def backfill_progress_id(account: str, chat_id: int, since: datetime, last_message_id: int) -> str:
    """Id of a backfill progress mark."""
    return _make("bp", account, chat_id, _epoch(since), last_message_id)


def backfill_completed_id(account: str, chat_id: int, since: datetime) -> str:
    """Id of a backfill completion."""
    return _make("bc", account, chat_id, _epoch(since))


def gapfill_id(account: str, chat_id: int, window_start: datetime, window_end: datetime) -> str:
    """Id of one gap-fill pass result."""
    return _make("g", account, chat_id, _epoch(window_start), _epoch(window_end))


def occurrence_id(kind: str) -> str:
    """Id of a one-off occurrence (lifecycle, flood wait, error): unique per call."""
    return f"o-{kind}-{uuid.uuid4().hex}"
