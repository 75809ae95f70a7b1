"""Shared factories of realistic events for tests (one place; test modules import from here).

``posted`` is defined in ``tests.helpers`` and re-exported here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas import ids
from schemas.events import MessageDeleted, MessageEdited, MessageSnapshot
from tests.helpers import posted

CHAN = -1001234567890
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def edited(
    chat_id: int, message_id: int, text: str, *, minutes: int = 5, account: str = "main"
) -> MessageEdited:
    snap = MessageSnapshot(
        message_id=message_id, date=T0, edit_date=T0 + timedelta(minutes=minutes), text=text
    )
    return MessageEdited(
        event_id=ids.edited_id(chat_id, snap, account=account),
        account=account,
        observed_at=T0 + timedelta(minutes=minutes),
        source="live",
        chat_id=chat_id,
        message=snap,
    )


def deleted(chat_id: int | None, message_id: int, *, account: str = "main") -> MessageDeleted:
    return MessageDeleted(
        event_id=ids.deleted_id(account=account, chat_id=chat_id, message_id=message_id),
        account=account,
        observed_at=T0 + timedelta(hours=1),
        source="live",
        chat_id=chat_id,
        message_id=message_id,
    )


__all__ = ["CHAN", "T0", "deleted", "edited", "posted"]
