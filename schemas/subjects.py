"""NATS subjects of the log and of commands.

Message facts go to ``tg.msg.<chat_id>`` (so ordering per chat is stream order and a consumer can
filter one chat); deletes without a chat id go to ``tg.msg.nochat.<account>``. Chat metadata,
backfill and gap-fill facts go to ``tg.chat.<chat_id>``; ingest lifecycle to ``tg.ops.<account>``.
Commands (request/reply, never stored) have their subjects in ``schemas.commands``.
"""

from __future__ import annotations

import re
from typing import Final

from schemas.events import (
    BackfillCompleted,
    BackfillProgressed,
    BackfillStarted,
    CatchUpCompleted,
    ChatDiscovered,
    ChatLeft,
    ChatUpdated,
    CountersUpdated,
    Event,
    GapFillCompleted,
    MediaStored,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    ReactionsUpdated,
)

PREFIX: Final = "tg"
ALL_SUBJECTS: Final = "tg.>"
MESSAGE_SUBJECTS: Final = "tg.msg.>"
CHAT_SUBJECTS: Final = "tg.chat.>"
OPS_SUBJECTS: Final = "tg.ops.>"

_MESSAGE_TYPES: Final = (
    MessagePosted,
    MessageEdited,
    MessageDeleted,
    ReactionsUpdated,
    CountersUpdated,
    MediaStored,
)
_CHAT_TYPES: Final = (
    ChatDiscovered,
    ChatUpdated,
    ChatLeft,
    BackfillStarted,
    BackfillProgressed,
    BackfillCompleted,
    GapFillCompleted,
    CatchUpCompleted,
)
_TOKEN: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def validate_account(account: str) -> str:
    """Return ``account`` if it is usable as a subject token, else raise ValueError."""
    if not _TOKEN.match(account):
        raise ValueError(f"account name must match {_TOKEN.pattern}: {account!r}")
    return account


def subject_for(event: Event) -> str:
    """The subject an event is appended to."""
    if isinstance(event, _MESSAGE_TYPES):
        if event.chat_id is None:
            return f"tg.msg.nochat.{event.account}"
        return f"tg.msg.{event.chat_id}"
    if isinstance(event, _CHAT_TYPES):
        if event.chat_id is None:
            return f"tg.chat.unknown.{event.account}"
        return f"tg.chat.{event.chat_id}"
    return f"tg.ops.{event.account}"


def chat_subjects(chat_id: int) -> list[str]:
    """Filter subjects for everything about one chat."""
    return [f"tg.msg.{chat_id}", f"tg.chat.{chat_id}"]


def chat_of_message_subject(subject: str) -> int | None:
    """The chat of a message subject (``tg.msg.<chat_id>``); None for any other subject."""
    head, _, rest = subject.partition(".msg.")
    if head != PREFIX or not rest.lstrip("-").isdigit():
        return None
    return int(rest)
