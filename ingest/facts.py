"""Which chat facts the log already holds, so a source never re-appends one past the dedup window.

JetStream drops a repeated ``Nats-Msg-Id`` only inside the stream's duplicate window (decision
006); a source that states the same fact at every start (the demo announcing its groups) would
otherwise add it once per start. Reading a chat's ``tg.chat.<chat_id>`` subject is small: chat
facts are a handful per chat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import msgspec

from eventlog import EventLog

KnownFacts = Callable[[Sequence[int]], Awaitable[set[str] | None]]
"""Event ids of the chat facts the log holds for these chats; None when the log cannot tell."""


class _Head(msgspec.Struct):
    event_id: str = ""


_decoder = msgspec.json.Decoder(_Head)


async def chat_fact_ids(
    log: EventLog, chat_ids: Sequence[int], *, timeout_s: float = 10.0
) -> set[str]:
    """Event ids on the ``tg.chat.<chat_id>`` subjects of ``chat_ids`` (raises on timeout)."""

    async def read() -> set[str]:
        found: set[str] = set()
        for chat_id in chat_ids:
            async for batch in log.read_raw(subjects=[f"tg.chat.{chat_id}"]):
                for record in batch:
                    try:
                        found.add(_decoder.decode(record.data).event_id)
                    except msgspec.DecodeError:
                        continue  # not ours to judge here; the projector dead-letters it
        return found

    return await asyncio.wait_for(read(), timeout=timeout_s)
