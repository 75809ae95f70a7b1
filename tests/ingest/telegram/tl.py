"""Builders of real ``telethon.tl.types`` objects for tests (no client, no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from telethon.tl import types

BASE = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
CHANNEL = 777  # raw channel id; marked -1000000000777
CHANNEL_MARKED = -1_000_000_000_777
BASIC = 555  # raw basic group id; marked -555


def at(minutes: float) -> datetime:
    """``BASE`` plus ``minutes``."""
    return BASE + timedelta(minutes=minutes)


def photo(photo_id: int = 9001) -> types.Photo:
    """A photo with two sizes."""
    return types.Photo(
        id=photo_id,
        access_hash=1,
        file_reference=b"ref",
        date=BASE,
        dc_id=2,
        sizes=[
            types.PhotoSize(type="m", w=320, h=240, size=10_000),
            types.PhotoSize(type="y", w=1280, h=960, size=120_000),
        ],
    )


def channel_message(
    mid: int,
    text: str = "hello",
    *,
    date: datetime | None = None,
    edit_date: datetime | None = None,
    **kw: object,
) -> types.Message:
    """A supergroup message from user 42."""
    return types.Message(
        id=mid,
        peer_id=types.PeerChannel(CHANNEL),
        date=date or at(mid),
        message=text,
        from_id=types.PeerUser(42),
        edit_date=edit_date,
        **kw,
    )


def basic_message(mid: int, text: str = "hi", **kw: object) -> types.Message:
    """A basic-group message from user 43."""
    return types.Message(
        id=mid,
        peer_id=types.PeerChat(BASIC),
        date=at(mid),
        message=text,
        from_id=types.PeerUser(43),
        **kw,
    )


def service(
    mid: int, action: object, *, chat: object | None = None, **kw: object
) -> types.MessageService:
    """A service message in the supergroup (or ``chat``)."""
    return types.MessageService(
        id=mid,
        peer_id=chat or types.PeerChannel(CHANNEL),
        date=at(mid),
        action=action,
        from_id=types.PeerUser(42),
        **kw,
    )


def new_channel(message: object) -> types.UpdateNewChannelMessage:
    """The live update of a new channel/supergroup message."""
    return types.UpdateNewChannelMessage(message=message, pts=1, pts_count=1)


def new_basic(message: object) -> types.UpdateNewMessage:
    """The live update of a new basic-group message."""
    return types.UpdateNewMessage(message=message, pts=1, pts_count=1)
