"""PubAcks of pipelined appends: one inbox, replies routed by token, no Future per message.

Both ways of appending (one publish per event, or atomic batches) send with a reply subject under
one inbox of this connection and wait on an ``AckWindow``: the slots of one pass, filled by the
inbox callback. A wait is bounded by "no ack at all for ``timeout_s``", so a slow server
(``sync_interval: always``) is waited for while a gone one is noticed.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Final

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg

from eventlog.records import AppendResult


class ApiErrorBody(msgspec.Struct):
    """The ``error`` object of a JetStream reply."""

    code: int = 0
    err_code: int = 0
    description: str = ""


class PubAck(msgspec.Struct):
    """A JetStream publish ack; ``batch``/``count`` are set by the commit of an atomic batch."""

    stream: str | None = None
    seq: int | None = None
    duplicate: bool = False
    batch: str | None = None
    count: int | None = None
    error: ApiErrorBody | None = None


pub_ack_decoder: Final = msgspec.json.Decoder(PubAck)


class Outcome(msgspec.Struct):
    """What became of one event in one pass: stored, to retry, or refused for good."""

    result: AppendResult | None = None
    retry_reason: str | None = None
    rejected: str | None = None


class AckWindow:
    """Acks of one pipelined pass: filled by the inbox callback, awaited by the sender."""

    __slots__ = ("acks", "on_ack", "outstanding", "progress", "wake_at")

    def __init__(self, size: int, *, on_ack: Callable[[], None] | None = None) -> None:
        self.acks: list[Msg | None] = [None] * size
        self.outstanding = 0
        self.progress = asyncio.Event()
        self.wake_at = 0  # wake the sender when this few acks are still outstanding
        self.on_ack = on_ack  # called once per first reply of a slot

    def acked(self, index: int, msg: Msg) -> None:
        """Record the reply for slot ``index`` (a second reply for the slot is ignored)."""
        if self.acks[index] is None:
            self.acks[index] = msg
            self.outstanding -= 1
            if self.on_ack is not None:
                self.on_ack()
            if self.outstanding <= self.wake_at:
                self.progress.set()

    async def wait(self, *, until_outstanding: int, timeout_s: float) -> bool:
        """Wait until at most ``until_outstanding`` acks are missing; False once ``timeout_s`` passes with no ack.

        A slow server (``sync_interval: always``) keeps acking and is waited for; a gone one stalls.
        """
        while self.outstanding > until_outstanding:
            self.wake_at = until_outstanding
            self.progress.clear()
            before = self.outstanding
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
                # arrives as the ack does, and the cancelled caller would go on appending.
                async with asyncio.timeout(timeout_s):
                    await self.progress.wait()
            except TimeoutError:
                if self.outstanding >= before:
                    return False  # no ack at all for timeout_s: the caller retries what is unacknowledged
        return True


class AckRouter:
    """One wildcard subscription on a private inbox; each reply goes to the slot its token names."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._inbox = client.new_inbox()
        self.reply_prefix = f"{self._inbox}."
        self._pending: dict[str, tuple[AckWindow, int]] = {}
        self._tokens = itertools.count()
        self._subscribed = False
        self._lock = asyncio.Lock()

    async def ensure_subscribed(self) -> None:
        """Subscribe to the inbox once (idempotent, safe under concurrency)."""
        if self._subscribed:
            return
        async with self._lock:
            if not self._subscribed:
                await self._client.subscribe(
                    f"{self._inbox}.*", cb=self._on_reply, pending_msgs_limit=-1
                )
                self._subscribed = True

    async def _on_reply(self, msg: Msg) -> None:
        entry = self._pending.pop(msg.subject[len(self.reply_prefix) :], None)
        if entry is not None:
            entry[0].acked(entry[1], msg)

    def expect(self, window: AckWindow, index: int) -> str:
        """A fresh token whose reply fills ``window`` slot ``index``; the reply subject is prefix + token."""
        token = str(next(self._tokens))
        self._pending[token] = (window, index)
        return token

    def forget(self, token: str) -> None:
        """Ignore any later reply for ``token`` (a retry uses a new one)."""
        self._pending.pop(token, None)
