"""Broadcast projection: each message event as a Supabase Realtime broadcast over HTTP.

Realtime's REST broadcast (the endpoint supabase clients use for HTTP sends):
``POST <SUPABASE_URL>/realtime/v1/api/broadcast`` with ``apikey`` and ``Authorization: Bearer``
headers and ``{"messages": [{"topic", "event", "payload"}, ...]}``; 202 means accepted.
At-least-once: the checkpoint (``projection_checkpoints`` row ``broadcast``) moves only after the
endpoint accepted the whole batch; a failing endpoint is retried with backoff by the runner, and
since this projection runs in its own task it never holds back the table projections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Final

import httpx
import msgspec
import psycopg

from eventlog import RawRecord
from projector.deadletter import DeadLetterStore
from projector.errors import ProjectionUnavailable
from projector.records import decode_batch
from schemas.codec import Codec
from schemas.events import (
    AnyEvent,
    CountersUpdated,
    MediaStored,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    ReactionsUpdated,
)
from schemas.subjects import MESSAGE_SUBJECTS

TOPIC: Final = "messages"
_MAX_PER_REQUEST: Final = 200
_encoder: Final = msgspec.json.Encoder()


class Broadcast(msgspec.Struct, frozen=True):
    """One Realtime broadcast message."""

    topic: str
    event: str
    payload: dict[str, object]
    # Private channel: Realtime delivers it only to clients the RLS policy on realtime.messages
    # admits (known readers, migration 20261129000500); a public topic reached every anon-key holder.
    private: bool = True


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def broadcast_of(seq: int, event: AnyEvent, *, topic: str = TOPIC) -> Broadcast | None:
    """The broadcast of a message event (INSERT/UPDATE/DELETE with the row as payload), else None."""
    base: dict[str, object] = {
        "chat_id": event.chat_id,
        "account": event.account,
        "seq": seq,
        "source": event.source,
        "observed_at": _iso(event.observed_at),
    }
    if isinstance(event, MessagePosted | MessageEdited):
        m = event.message
        payload = {
            **base,
            "message_id": m.message_id,
            "date": _iso(m.date),
            "edit_date": _iso(m.edit_date),
            "text": m.text,
            "sender_id": None if m.sender is None else m.sender.id,
            "sender_name": None if m.sender is None else m.sender.display_name,
            "reply_to_message_id": None if m.reply_to is None else m.reply_to.message_id,
            "media_type": None if m.media is None else m.media.type,
            "views": m.views,
            "is_service": m.action is not None,
            "is_deleted": False,
        }
        return Broadcast(topic, "INSERT" if isinstance(event, MessagePosted) else "UPDATE", payload)
    if isinstance(event, MessageDeleted):
        return Broadcast(
            topic,
            "DELETE",
            {
                **base,
                "message_id": event.message_id,
                "is_deleted": True,
                "deleted_at": _iso(event.observed_at),
            },
        )
    if isinstance(event, ReactionsUpdated):
        return Broadcast(
            topic,
            "UPDATE",
            {
                **base,
                "message_id": event.message_id,
                "reactions": msgspec.to_builtins(event.reactions),
            },
        )
    if isinstance(event, CountersUpdated):
        counts = {"views": event.views, "forwards": event.forwards, "replies": event.replies}
        return Broadcast(
            topic,
            "UPDATE",
            {
                **base,
                "message_id": event.message_id,
                **{k: v for k, v in counts.items() if v is not None},
            },
        )
    if isinstance(event, MediaStored):
        return Broadcast(
            topic, "UPDATE", {**base, "message_id": event.message_id, "media_sha256": event.sha256}
        )
    return None


class BroadcastProjection:
    """Sends message events to Supabase Realtime; checkpoint in Postgres."""

    subjects: Sequence[str] | None = (MESSAGE_SUBJECTS,)

    def __init__(
        self,
        *,
        supabase_url: str,
        api_key: str,
        database_url: str,
        codec: Codec,
        dead_letters: DeadLetterStore | None = None,
        name: str = "broadcast",
        topic: str = TOPIC,
        timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self._endpoint = supabase_url.rstrip("/") + "/realtime/v1/api/broadcast"
        self._headers = {
            "apikey": api_key,
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
        }
        self._db_url = database_url
        self._codec = codec
        self._dead_letters = dead_letters
        self._topic = topic
        self._timeout_s = timeout_s
        self._http: httpx.AsyncClient | None = None
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self.sent = 0

    def __repr__(self) -> str:  # never show the key
        return f"BroadcastProjection(endpoint={self._endpoint!r})"

    async def open(self) -> int:
        """Connect the checkpoint store and the HTTP client; returns the checkpoint."""
        await self.close()
        try:
            self._conn = await psycopg.AsyncConnection.connect(
                self._db_url, autocommit=True, connect_timeout=10
            )
            await self._conn.execute(
                "INSERT INTO public.projection_checkpoints (name) VALUES (%s) "
                "ON CONFLICT (name) DO NOTHING",
                (self.name,),
            )
            row = await (
                await self._conn.execute(
                    "SELECT seq FROM public.projection_checkpoints WHERE name = %s", (self.name,)
                )
            ).fetchone()
        except (psycopg.OperationalError, psycopg.InterfaceError) as e:
            raise ProjectionUnavailable(f"broadcast checkpoint store: {type(e).__name__}") from e
        self._http = httpx.AsyncClient(timeout=self._timeout_s)
        return int(str(row[0])) if row else 0

    async def close(self) -> None:
        """Close the HTTP client and the checkpoint connection."""
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()

    def prepare(self, batch: Sequence[RawRecord]) -> object:
        """Decode the batch."""
        return decode_batch(self._codec, batch)

    async def apply(
        self, batch: Sequence[RawRecord], *, caught_up: bool = False, prepared: object = None
    ) -> None:
        """Broadcast the batch's message events, then advance the checkpoint."""
        if not batch:
            return
        good, bad = prepared if isinstance(prepared, tuple) else decode_batch(self._codec, batch)
        if bad and self._dead_letters is not None:
            await self._dead_letters.record(self.name, bad)
        messages = [
            b for r in good if (b := broadcast_of(r.seq, r.event, topic=self._topic)) is not None
        ]
        for start in range(0, len(messages), _MAX_PER_REQUEST):
            await self._send(messages[start : start + _MAX_PER_REQUEST])
        assert self._conn is not None
        try:
            await self._conn.execute(
                "UPDATE public.projection_checkpoints SET seq = %s, events_applied = events_applied + %s, "
                "updated_at = now() WHERE name = %s",
                (batch[-1].seq, len(messages), self.name),
            )
        except (psycopg.OperationalError, psycopg.InterfaceError) as e:
            raise ProjectionUnavailable(f"broadcast checkpoint store: {type(e).__name__}") from e

    async def reapply(self, record: RawRecord) -> str | None:
        """Broadcast one dead-lettered record again."""
        good, bad = decode_batch(self._codec, [record])
        if bad:
            return bad[0].error
        message = broadcast_of(record.seq, good[0].event, topic=self._topic)
        if message is not None:
            try:
                await self._send([message])
            except ProjectionUnavailable as e:
                return str(e)
        return None

    async def _send(self, messages: list[Broadcast]) -> None:
        if not messages:
            return
        if self._http is None:
            raise ProjectionUnavailable("broadcast: not open")
        body = _encoder.encode({"messages": messages})
        try:
            response = await asyncio.wait_for(
                self._http.post(self._endpoint, content=body, headers=self._headers),
                timeout=self._timeout_s + 1,
            )
        except (httpx.HTTPError, TimeoutError) as e:
            raise ProjectionUnavailable(f"broadcast: {type(e).__name__}") from e
        if response.status_code not in (200, 202):
            raise ProjectionUnavailable(f"broadcast: endpoint answered {response.status_code}")
        self.sent += len(messages)
