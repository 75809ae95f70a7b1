"""The Telethon side of the ``Gateway``: client construction and the one adapter over its calls.

Client settings follow issue 4: ``connection_retries=5``, ``retry_delay=3``, ``timeout=120``,
``auto_reconnect=True``, IPv6 configurable, updates on with ``catch_up``. ``flood_sleep_threshold``
is a setting, 0 by default, so Telethon never sleeps a flood wait by itself: every flood reaches
``ingest.telegram.ratelimit`` and becomes a ``FloodWaited`` event before we wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from telethon import TelegramClient, events, utils
from telethon.sessions import StringSession
from telethon.tl import functions, types

from ingest.errors import AccountUnusable, GatewayError
from ingest.telegram.convert import peer_ref_of
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

CONNECTION_RETRIES: Final = 5
RETRY_DELAY_S: Final = 3
TIMEOUT_S: Final = 120
CONNECT_TIMEOUT_S: Final = 180.0  # 5 retries x (timeout) bounded further by our own deadline


def build_client(
    *,
    session: Secret,
    api_id: int,
    api_hash: Secret,
    use_ipv6: bool = False,
    flood_sleep_threshold: int = 0,
) -> TelegramClient:
    """A Telethon client on a ``StringSession`` (never a session file)."""
    return TelegramClient(
        StringSession(session.reveal()),
        api_id,
        api_hash.reveal(),
        connection_retries=CONNECTION_RETRIES,
        retry_delay=RETRY_DELAY_S,
        timeout=TIMEOUT_S,
        auto_reconnect=True,
        use_ipv6=use_ipv6,
        flood_sleep_threshold=flood_sleep_threshold,
        receive_updates=True,
        catch_up=True,
    )


def input_peer(peer: PeerRef) -> object:
    """The input peer of a cached ref, built offline (no ``get_entity`` call)."""
    raw, cls = utils.resolve_id(peer.peer_id)
    if peer.kind == "channel" or cls is types.PeerChannel:
        return types.InputPeerChannel(channel_id=raw, access_hash=peer.access_hash or 0)
    if peer.kind == "chat" or cls is types.PeerChat:
        return types.InputPeerChat(chat_id=raw)
    return types.InputPeerUser(user_id=raw, access_hash=peer.access_hash or 0)


def _state(st: types.updates.State) -> UpdateState:
    return UpdateState(pts=st.pts, qts=st.qts, date=st.date or datetime.now(UTC), seq=st.seq)


def _named(chats: Sequence[object], users: Sequence[object]) -> dict[int, object]:
    return {utils.get_peer_id(e): e for e in (*chats, *users)}


def _kept(messages: Sequence[object]) -> list[TLMessage]:
    return [m for m in messages if isinstance(m, (types.Message, types.MessageService))]


def _entities(messages: Sequence[object]) -> dict[int, object]:
    out: dict[int, object] = {}
    for m in messages:
        for attr in ("sender", "chat"):
            ent = getattr(m, attr, None)
            if ent is not None:
                out[utils.get_peer_id(ent)] = ent
    return out


class TelethonGateway:
    """``Gateway`` over a ``TelegramClient``; one Telegram request per call."""

    def __init__(self, client: TelegramClient) -> None:
        self._client = client
        self._self_id: int | None = None

    def __repr__(self) -> str:
        return "TelethonGateway()"

    async def connect(self) -> None:
        """Connect and check the session is authorized."""
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await self._client.connect()
        async with asyncio.timeout(TIMEOUT_S):
            authorized = await self._client.is_user_authorized()
        if not authorized:
            await self.disconnect()
            raise AccountUnusable(
                "the stored Telegram session is not authorized; run `aaltohub login` again"
            )
        async with asyncio.timeout(TIMEOUT_S):
            me = await self._client.get_me(input_peer=True)
        self._self_id = getattr(me, "user_id", None)

    async def disconnect(self) -> None:
        """Disconnect (idempotent)."""
        async with asyncio.timeout(30):
            await self._client.disconnect()

    def is_connected(self) -> bool:
        """True while connected."""
        return bool(self._client.is_connected())

    def self_id(self) -> int | None:
        """The account's own user id (known after ``connect``)."""
        return self._self_id

    def add_update_handler(self, callback: UpdateCallback) -> None:
        """Deliver every raw update to ``callback`` (synchronously: it only converts and enqueues)."""

        async def on_raw(update: object) -> None:
            callback(update)

        self._client.add_event_handler(on_raw, events.Raw)

    async def get_state(self) -> UpdateState:
        """``updates.getState``."""
        async with asyncio.timeout(TIMEOUT_S):
            return _state(await self._client(functions.updates.GetStateRequest()))

    async def get_difference(self, state: UpdateState) -> Difference:
        """``updates.getDifference`` from ``state`` (one slice)."""
        request = functions.updates.GetDifferenceRequest(
            pts=state.pts, date=state.date, qts=state.qts
        )
        async with asyncio.timeout(TIMEOUT_S):
            diff = await self._client(request)
        if isinstance(diff, types.updates.DifferenceEmpty):
            after = UpdateState(pts=state.pts, qts=state.qts, date=diff.date, seq=diff.seq)
            return Difference(new_messages=[], other_updates=[], state=after)
        if isinstance(diff, types.updates.DifferenceTooLong):
            after = UpdateState(pts=diff.pts, qts=state.qts, date=state.date, seq=state.seq)
            return Difference(new_messages=[], other_updates=[], state=after, too_long=True)
        slice_ = isinstance(diff, types.updates.DifferenceSlice)
        return Difference(
            new_messages=_kept(diff.new_messages),
            other_updates=list(diff.other_updates),
            state=_state(diff.intermediate_state if slice_ else diff.state),
            final=not slice_,
            entities=_named(diff.chats, diff.users),
        )

    async def get_channel_difference(
        self, peer: PeerRef, *, pts: int, limit: int
    ) -> ChannelDifference:
        """``updates.getChannelDifference`` of one channel from ``pts``."""
        channel = input_peer(peer)
        assert isinstance(channel, types.InputPeerChannel)
        request = functions.updates.GetChannelDifferenceRequest(
            channel=types.InputChannel(channel.channel_id, channel.access_hash),
            filter=types.ChannelMessagesFilterEmpty(),
            pts=max(1, pts),
            limit=limit,
            force=True,
        )
        async with asyncio.timeout(TIMEOUT_S):
            diff = await self._client(request)
        if isinstance(diff, types.updates.ChannelDifferenceEmpty):
            return ChannelDifference(new_messages=[], other_updates=[], pts=diff.pts)
        if isinstance(diff, types.updates.ChannelDifferenceTooLong):
            current = getattr(diff.dialog, "pts", None) or pts
            return ChannelDifference(new_messages=[], other_updates=[], pts=current, too_long=True)
        return ChannelDifference(
            new_messages=_kept(diff.new_messages),
            other_updates=list(diff.other_updates),
            pts=diff.pts,
            final=bool(diff.final),
            entities=_named(diff.chats, diff.users),
        )

    async def get_dialogs(self) -> list[PeerRef]:
        """Every dialog's peer."""
        dialogs = await self._client.get_dialogs(limit=None)
        return [ref for d in dialogs if (ref := peer_ref_of(d.entity)) is not None]

    async def get_entity(self, peer_id: int) -> PeerRef:
        """One peer over the network."""
        try:
            entity = await self._client.get_entity(peer_id)
        except ValueError as e:  # Telethon: "Could not find the input entity"
            raise GatewayError("entity not found", method="getEntity", chat_id=peer_id) from e
        ref = peer_ref_of(entity)
        if ref is None:
            raise GatewayError("not a user, chat or channel", method="getEntity", chat_id=peer_id)
        return ref

    async def get_history(
        self,
        peer: PeerRef,
        *,
        limit: int,
        offset_id: int = 0,
        offset_date: datetime | None = None,
        reverse: bool = False,
    ) -> HistoryPage:
        """One page of history (Telethon ``get_messages`` semantics)."""
        msgs = await self._client.get_messages(
            input_peer(peer),
            limit=limit,
            offset_id=offset_id,
            offset_date=offset_date,
            reverse=reverse,
        )
        kept = [m for m in msgs if isinstance(m, (types.Message, types.MessageService))]
        return HistoryPage(
            messages=kept, total=getattr(msgs, "total", None), entities=_entities(kept)
        )

    async def get_messages(self, peer: PeerRef, ids: Sequence[int]) -> list[TLMessage | None]:
        """Messages by id."""
        msgs = await self._client.get_messages(input_peer(peer), ids=list(ids))
        return [m if isinstance(m, (types.Message, types.MessageService)) else None for m in msgs]

    async def download_media(self, message: TLMessage, *, max_bytes: int) -> bytes | None:
        """The media bytes, or None when absent or too large."""
        file = getattr(message, "file", None)
        if file is None or (file.size is not None and file.size > max_bytes):
            return None
        data = await self._client.download_media(message, file=bytes)
        return data if isinstance(data, bytes) else None
