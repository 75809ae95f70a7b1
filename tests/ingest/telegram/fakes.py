"""A small fake behind the ``Gateway`` Protocol: scripted chats, dialogs and failures."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from ingest.telegram.gateway import HistoryPage, PeerRef, TLMessage, UpdateCallback


class FakeGateway:
    """In-memory Telegram: ``chats`` maps marked chat id → its messages; ``fail`` scripts exceptions."""

    def __init__(
        self, *, dialogs: Sequence[PeerRef] = (), chats: dict[int, list[TLMessage]] | None = None
    ) -> None:
        self.dialogs = list(dialogs)
        self.chats: dict[int, list[TLMessage]] = chats or {}
        self.media: dict[int, bytes] = {}  # message id → bytes
        self.fail: dict[str, list[BaseException]] = {}
        self.calls: list[tuple[str, dict[str, object]]] = []
        self.handlers: list[UpdateCallback] = []
        self.connected = False
        self.self_user_id: int | None = 1  # the account's own user id

    def _maybe_fail(self, method: str, **kw: object) -> None:
        self.calls.append((method, kw))
        queue = self.fail.get(method)
        if queue:
            raise queue.pop(0)

    async def connect(self) -> None:
        self._maybe_fail("connect")
        self.connected = True

    async def disconnect(self) -> None:
        self.connected = False

    def is_connected(self) -> bool:
        return self.connected

    def self_id(self) -> int | None:
        return self.self_user_id

    def add_update_handler(self, callback: UpdateCallback) -> None:
        self.handlers.append(callback)

    def push(self, update: object) -> None:
        """Deliver a live update to the registered handlers."""
        for h in self.handlers:
            h(update)

    async def catch_up(self) -> None:
        self._maybe_fail("catch_up")

    async def get_dialogs(self) -> list[PeerRef]:
        self._maybe_fail("get_dialogs")
        return list(self.dialogs)

    async def get_entity(self, peer_id: int) -> PeerRef:
        self._maybe_fail("get_entity", peer_id=peer_id)
        for d in self.dialogs:
            if d.peer_id == peer_id:
                return d
        raise KeyError(peer_id)

    async def get_history(
        self,
        peer: PeerRef,
        *,
        limit: int,
        offset_id: int = 0,
        offset_date: datetime | None = None,
        reverse: bool = False,
    ) -> HistoryPage:
        self._maybe_fail(
            "get_history",
            chat=peer.peer_id,
            limit=limit,
            offset_id=offset_id,
            offset_date=offset_date,
            reverse=reverse,
        )
        msgs = sorted(self.chats.get(peer.peer_id, []), key=lambda m: m.id, reverse=not reverse)
        if reverse:
            msgs = [
                m
                for m in msgs
                if (not offset_id or m.id > offset_id)
                and (offset_date is None or m.date > offset_date)
            ]
        else:
            msgs = [
                m
                for m in msgs
                if (not offset_id or m.id < offset_id)
                and (offset_date is None or m.date < offset_date)
            ]
        return HistoryPage(messages=msgs[:limit], total=len(self.chats.get(peer.peer_id, [])))

    async def get_messages(self, peer: PeerRef, ids: Sequence[int]) -> list[TLMessage | None]:
        self._maybe_fail("get_messages", chat=peer.peer_id, ids=list(ids))
        by_id = {m.id: m for m in self.chats.get(peer.peer_id, [])}
        return [by_id.get(i) for i in ids]

    async def download_media(self, message: TLMessage, *, max_bytes: int) -> bytes | None:
        self._maybe_fail("download_media", message_id=message.id)
        data = self.media.get(message.id)
        return None if data is None or len(data) > max_bytes else data


class Sleeps:
    """An injectable sleeper that records requested delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class TestSleeper:
    """For long-running loops: delays ≥ ``forever_s`` block until cancelled (the loop stays idle),
    shorter ones yield briefly instead of waiting for real. Every request is recorded."""

    __test__ = False

    def __init__(self, *, forever_s: float = 1000.0) -> None:
        self.forever_s = forever_s
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if seconds >= self.forever_s:
            await asyncio.Event().wait()
        await asyncio.sleep(min(seconds, 0.01))
