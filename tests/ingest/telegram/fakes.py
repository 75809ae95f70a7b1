"""A small fake behind the ``Gateway`` Protocol: scripted chats, dialogs and failures."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from telethon import errors as tg_errors
from telethon.tl import types

from ingest.telegram.gateway import (
    ChannelDifference,
    Difference,
    HistoryPage,
    PeerRef,
    TLMessage,
    UpdateCallback,
)
from ingest.telegram.sessions import Secret
from ingest.telegram.updatestate import UpdateState


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
        self.updates = FakeUpdates(self, now=datetime.now(UTC))
        self.reachable = asyncio.Event()  # cleared: connect() waits, as during a network outage
        self.reachable.set()
        self.self_user_id: int | None = 1  # the account's own user id

    def _maybe_fail(self, method: str, **kw: object) -> None:
        self.calls.append((method, kw))
        queue = self.fail.get(method)
        if queue:
            raise queue.pop(0)

    async def connect(self) -> None:
        await self.reachable.wait()
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

    async def get_state(self) -> UpdateState:
        self._maybe_fail("get_state")
        return self.updates.state()

    async def get_difference(self, state: UpdateState) -> Difference:
        self._maybe_fail("get_difference", pts=state.pts)
        return self.updates.difference(state)

    async def get_channel_difference(
        self, peer: PeerRef, *, pts: int, limit: int
    ) -> ChannelDifference:
        self._maybe_fail("get_channel_difference", chat=peer.peer_id, pts=pts)
        return self.updates.channel_difference(peer.peer_id, pts, limit)

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


class FakeUpdates:
    """Telegram's update sequences behind the fake: the account's (pts) and each channel's.

    ``post``/``edit``/``delete`` change a chat and record the update; while the gateway is
    connected the update is also pushed live. ``forget_before`` models Telegram keeping no
    difference that far back (the answer is then "too long")."""

    def __init__(self, gateway: FakeGateway, *, now: datetime) -> None:
        self.gateway = gateway
        self.now = now
        self.pts = 100
        self.account_log: list[tuple[int, object]] = []
        self.channel_pts: dict[int, int] = {}
        self.channel_log: dict[int, list[tuple[int, object]]] = {}
        self.account_horizon = 0  # getDifference from a pts below this is too long
        self.channel_horizon: dict[int, int] = {}
        self.slice_size = 3  # small slices, so tests cover DifferenceSlice

    def _record(self, chat_id: int, update: object, *, channel: bool) -> None:
        if channel:
            pts = self.channel_pts.get(chat_id, 10) + 1
            self.channel_pts[chat_id] = pts
            self.channel_log.setdefault(chat_id, []).append((pts, update))
        else:
            self.pts += 1
            self.account_log.append((self.pts, update))
        if self.gateway.connected:
            self.gateway.push(update)

    def post(self, message: TLMessage) -> None:
        """A new message in its chat."""
        chat_id = _chat_of(message)
        self.gateway.chats.setdefault(chat_id, []).append(message)
        channel = isinstance(message.peer_id, types.PeerChannel)
        update: object = (
            types.UpdateNewChannelMessage(message=message, pts=0, pts_count=1)
            if channel
            else types.UpdateNewMessage(message=message, pts=0, pts_count=1)
        )
        self._record(chat_id, update, channel=channel)

    def edit(self, message: TLMessage) -> None:
        """A message replaced by its edited version."""
        chat_id = _chat_of(message)
        msgs = self.gateway.chats[chat_id]
        msgs[:] = [message if m.id == message.id else m for m in msgs]
        channel = isinstance(message.peer_id, types.PeerChannel)
        update: object = (
            types.UpdateEditChannelMessage(message=message, pts=0, pts_count=1)
            if channel
            else types.UpdateEditMessage(message=message, pts=0, pts_count=1)
        )
        self._record(chat_id, update, channel=channel)

    def delete(self, chat_id: int, message_ids: list[int]) -> None:
        """Messages deleted from a chat."""
        msgs = self.gateway.chats[chat_id]
        msgs[:] = [m for m in msgs if m.id not in message_ids]
        channel = chat_id < -1_000_000_000_000
        update: object = (
            types.UpdateDeleteChannelMessages(
                channel_id=-chat_id - 1_000_000_000_000, messages=message_ids, pts=0, pts_count=1
            )
            if channel
            else types.UpdateDeleteMessages(messages=message_ids, pts=0, pts_count=1)
        )
        self._record(chat_id, update, channel=channel)

    def forget_before_now(self) -> None:
        """Telegram answers "too long" for any state older than this moment."""
        self.account_horizon = self.pts
        self.channel_horizon = dict(self.channel_pts)

    def state(self) -> UpdateState:
        return UpdateState(pts=self.pts, qts=0, date=self.now, seq=0)

    def difference(self, state: UpdateState) -> Difference:
        if state.pts < self.account_horizon:
            return Difference(new_messages=[], other_updates=[], state=self.state(), too_long=True)
        pending = [(p, u) for p, u in self.account_log if p > state.pts]
        chunk = pending[: self.slice_size]
        final = len(pending) <= self.slice_size
        after = replace(self.state(), pts=chunk[-1][0]) if chunk else self.state()
        new = [u.message for _, u in chunk if isinstance(u, types.UpdateNewMessage)]
        other = [u for _, u in chunk if not isinstance(u, types.UpdateNewMessage)]
        return Difference(new_messages=new, other_updates=other, state=after, final=final)

    def channel_difference(self, chat_id: int, pts: int, limit: int) -> ChannelDifference:
        current = self.channel_pts.get(chat_id, 10)
        if pts < self.channel_horizon.get(chat_id, 0) or pts == 1:
            return ChannelDifference(new_messages=[], other_updates=[], pts=current, too_long=True)
        pending = [(p, u) for p, u in self.channel_log.get(chat_id, []) if p > pts]
        chunk = pending[: min(limit, self.slice_size)]
        new = [u.message for _, u in chunk if isinstance(u, types.UpdateNewChannelMessage)]
        other = [u for _, u in chunk if not isinstance(u, types.UpdateNewChannelMessage)]
        return ChannelDifference(
            new_messages=new,
            other_updates=other,
            pts=chunk[-1][0] if chunk else current,
            final=len(pending) <= len(chunk),
        )


def _chat_of(message: TLMessage) -> int:
    peer = message.peer_id
    if isinstance(peer, types.PeerChannel):
        return -1_000_000_000_000 - int(peer.channel_id)
    if isinstance(peer, types.PeerChat):
        return -int(peer.chat_id)
    assert isinstance(peer, types.PeerUser)
    return int(peer.user_id)


class FakeLoginNetwork:
    """Telegram's login side behind ``AuthClient``: registered phones with their code and optional
    two-step password; ``fail`` scripts exceptions per call (``send_code``, ``sign_in_code``,
    ``sign_in_password``), the way Telethon raises them."""

    def __init__(self) -> None:
        self.phones: dict[str, tuple[str, str | None]] = {}
        self.fail: dict[str, list[BaseException]] = {}
        self.open_connections = 0
        self.codes_sent = 0

    def register(self, phone: str, *, code: str, password: str | None = None) -> None:
        """A phone Telegram knows, the code it sends and its cloud password (None: no 2FA)."""
        self.phones[phone] = (code, password)

    def session_of(self, phone: str) -> str:
        """The session string a login with ``phone`` produces."""
        return f"1fake-session-{abs(hash(phone)) % 10**8}"

    def client(self) -> FakeAuthClient:
        """A fresh client, as ``TelethonAuthClient`` would be."""
        return FakeAuthClient(self)

    def maybe_fail(self, method: str) -> None:
        """Raise the next scripted failure of ``method``, if any."""
        queue = self.fail.get(method)
        if queue:
            raise queue.pop(0)


class FakeAuthClient:
    """One login connection of the ``FakeLoginNetwork`` (the ``AuthClient`` Protocol)."""

    def __init__(self, network: FakeLoginNetwork) -> None:
        self._network = network
        self._phone: str | None = None
        self._authorized = False
        self.connected = False

    async def connect(self) -> None:
        self._network.maybe_fail("connect")
        self.connected = True
        self._network.open_connections += 1

    async def disconnect(self) -> None:
        if self.connected:
            self.connected = False
            self._network.open_connections -= 1

    async def send_code(self, phone: Secret) -> str:
        self._network.maybe_fail("send_code")
        if phone.reveal() not in self._network.phones:
            raise tg_errors.PhoneNumberInvalidError(request=None)
        self._network.codes_sent += 1
        return "hash-abc"

    async def sign_in_code(self, phone: Secret, code: Secret, phone_code_hash: str) -> None:
        assert phone_code_hash == "hash-abc"
        self._network.maybe_fail("sign_in_code")
        expected, password = self._network.phones[phone.reveal()]
        if code.reveal() != expected:
            raise tg_errors.PhoneCodeInvalidError(request=None)
        self._phone = phone.reveal()
        if password is not None:
            raise tg_errors.SessionPasswordNeededError(request=None)
        self._authorized = True

    async def sign_in_password(self, password: Secret) -> None:
        self._network.maybe_fail("sign_in_password")
        assert self._phone is not None
        if password.reveal() != self._network.phones[self._phone][1]:
            raise tg_errors.PasswordHashInvalidError(request=None)
        self._authorized = True

    def export_session(self) -> Secret:
        assert self._authorized and self._phone is not None
        return Secret(self._network.session_of(self._phone))
