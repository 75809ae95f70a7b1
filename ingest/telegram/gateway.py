"""The narrow seam over every Telegram call ingest makes; Telethon behind it, a fake in tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, TypeAlias

import msgspec
from telethon.tl import types

from ingest.telegram.updatestate import UpdateState
from schemas.events import ChatKind

PeerKind = Literal["user", "chat", "channel"]
TLMessage: TypeAlias = types.Message | types.MessageService
UpdateCallback = Callable[[object], None]


class PeerRef(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A resolved peer: marked id, kind and access hash (enough to build an input peer offline)."""

    peer_id: int
    kind: PeerKind
    access_hash: int | None = None
    username: str | None = None
    title: str | None = None
    chat_kind: ChatKind | None = None
    forum: bool = False
    member_count: int | None = None
    active: bool = True
    photo_id: int | None = None  # the chat's current photo, if it has one

    def __repr__(self) -> str:
        return f"PeerRef(peer_id={self.peer_id}, kind={self.kind!r}, chat_kind={self.chat_kind!r})"


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of a chat's history as Telegram returned it; ``total`` is Telegram's count if known."""

    messages: list[TLMessage]
    total: int | None = None
    entities: dict[int, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Difference:
    """One answer of ``updates.getDifference``: messages and other updates since a state.

    ``state`` is where the next call starts (the final or intermediate state); ``final`` is False
    while Telegram has more (a slice). ``too_long``: Telegram keeps no difference that far back;
    ``state`` then only carries the new pts and the history must be read instead."""

    new_messages: list[TLMessage]
    other_updates: list[object]
    state: UpdateState
    final: bool = True
    too_long: bool = False
    entities: dict[int, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChannelDifference:
    """One answer of ``updates.getChannelDifference`` for a channel or supergroup since ``pts``.

    ``too_long``: the gap is too big for a difference; ``pts`` is then the channel's current pts and
    its history must be read from the newest message we hold."""

    new_messages: list[TLMessage]
    other_updates: list[object]
    pts: int
    final: bool = True
    too_long: bool = False
    entities: dict[int, object] = field(default_factory=dict)


class Gateway(Protocol):
    """Every Telegram call we make. One request per call so rate control can wrap each one."""

    async def connect(self) -> None:
        """Connect (and authorize from the stored session); raise ``IngestError`` if unauthorized."""
        ...

    async def disconnect(self) -> None:
        """Disconnect; idempotent."""
        ...

    def is_connected(self) -> bool:
        """True while connected to Telegram."""
        ...

    def self_id(self) -> int | None:
        """The account's own user id once connected (None before): the sender of its outgoing
        messages, which Telegram sends without ``from_id``."""
        ...

    def add_update_handler(self, callback: UpdateCallback) -> None:
        """Call ``callback(update)`` for every raw update (``telethon.tl.types.Update*``)."""
        ...

    async def get_state(self) -> UpdateState:
        """The account's current update state (``updates.getState``)."""
        ...

    async def get_difference(self, state: UpdateState) -> Difference:
        """What happened since ``state`` (``updates.getDifference``), one slice per call."""
        ...

    async def get_channel_difference(
        self, peer: PeerRef, *, pts: int, limit: int
    ) -> ChannelDifference:
        """What happened in one channel since ``pts`` (``updates.getChannelDifference``)."""
        ...

    async def get_dialogs(self) -> list[PeerRef]:
        """All dialogs of the account as peers (bulk: also warms the entity cache)."""
        ...

    async def get_entity(self, peer_id: int) -> PeerRef:
        """Resolve one marked peer id over the network (costly: prefer the entity cache)."""
        ...

    async def get_history(
        self,
        peer: PeerRef,
        *,
        limit: int,
        offset_id: int = 0,
        offset_date: datetime | None = None,
        reverse: bool = False,
    ) -> HistoryPage:
        """One page of history. ``reverse``: oldest first, ids > ``offset_id`` / after ``offset_date``;
        otherwise newest first, ids < ``offset_id`` / before ``offset_date`` (Telethon semantics)."""
        ...

    async def get_messages(self, peer: PeerRef, ids: Sequence[int]) -> list[TLMessage | None]:
        """Messages by id (None where a message does not exist any more)."""
        ...

    async def download_media(self, message: TLMessage, *, max_bytes: int) -> bytes | None:
        """The media bytes of ``message``, or None when it has none or it is larger than ``max_bytes``."""
        ...
