"""Appending events: pipelined publishes with ``Nats-Msg-Id`` dedup and every PubAck checked.

nats-py's ``publish_async`` costs a Future, a semaphore and a token per message and its futures
can hang on server errors (docs/decisions/004-hand-rolled-publish.md). We publish with core ``publish`` and a
reply subject under one inbox, route PubAcks by token to slots of the current pass (no Future per
message), bound every wait, stop a pass when acks stall (server gone), and retry the unacknowledged
events with the *same* id: a lost ack never becomes a lost or doubled event.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from typing import Final

import msgspec
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from eventlog.errors import AppendFailed, AppendRejected, EventLogUnavailable
from eventlog.records import AppendResult
from schemas.codec import Codec
from schemas.events import Event
from schemas.subjects import subject_for

log = logging.getLogger(__name__)

MSG_ID_HEADER: Final = "Nats-Msg-Id"  # JetStream dedup header (nats.docs jetstream/headers.md)
# JetStream API errors that no retry can fix (nats-server errors.json).
_PERMANENT_ERR_CODES: Final = frozenset(
    {
        10054,  # JSStreamMessageExceedsMaximumErr
        10077,  # JSStreamStoreFailedF (incl. maximum bytes/messages exceeded with discard=new)
    }
)


class _ErrorBody(msgspec.Struct):
    code: int = 0
    err_code: int = 0
    description: str = ""


class _PubAck(msgspec.Struct):
    stream: str | None = None
    seq: int | None = None
    duplicate: bool = False
    error: _ErrorBody | None = None


_ack_decoder: Final = msgspec.json.Decoder(_PubAck)


class _Outcome(msgspec.Struct):
    result: AppendResult | None = None
    retry_reason: str | None = None
    rejected: str | None = None


class _Window:
    """Acks of one pipelined pass: filled by the inbox callback, awaited by the sender."""

    __slots__ = ("acks", "outstanding", "progress", "wake_at")

    def __init__(self, size: int) -> None:
        self.acks: list[Msg | None] = [None] * size
        self.outstanding = 0
        self.progress = asyncio.Event()
        self.wake_at = 0  # wake the sender when this few acks are still outstanding

    def acked(self, index: int, msg: Msg) -> None:
        if self.acks[index] is None:
            self.acks[index] = msg
            self.outstanding -= 1
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
                await asyncio.wait_for(self.progress.wait(), timeout=timeout_s)
            except TimeoutError:
                if self.outstanding >= before:
                    return False  # no ack at all for timeout_s: the caller retries what is unacknowledged
        return True


class Appender:
    """Appends events to the stream; safe for concurrent use from one event loop.

    Per message the cost is one core publish (one header) and one dict entry; acks are routed by
    reply token to a slot of the current window, with no Future per message (docs/decisions/004).
    """

    def __init__(
        self,
        client: Client,
        *,
        stream: str,
        codec: Codec,
        window: int = 4000,
        ack_timeout_s: float = 5.0,
        deadline_s: float = 30.0,
    ) -> None:
        self._client = client
        self._stream = stream
        self._codec = codec
        self._window = window
        self._ack_timeout_s = ack_timeout_s
        self._deadline_s = deadline_s
        self._inbox = client.new_inbox()
        self._reply_prefix = f"{self._inbox}."
        self._pending: dict[str, tuple[_Window, int]] = {}
        self._tokens = itertools.count()
        self._subscribed = False
        self._lock = asyncio.Lock()

    async def _ensure_subscribed(self) -> None:
        if self._subscribed:
            return
        async with self._lock:
            if not self._subscribed:
                await self._client.subscribe(
                    f"{self._inbox}.*", cb=self._on_ack, pending_msgs_limit=-1
                )
                self._subscribed = True

    async def _on_ack(self, msg: Msg) -> None:
        entry = self._pending.pop(msg.subject[len(self._reply_prefix) :], None)
        if entry is not None:
            entry[0].acked(entry[1], msg)

    async def append(self, event: Event) -> AppendResult:
        """Append one event; returns its seq (or the original seq if it was a duplicate)."""
        return (await self.append_many([event]))[0]

    async def append_many(self, events: Sequence[Event]) -> list[AppendResult]:
        """Append events in order, pipelined; every ack is checked.

        Events not acknowledged are retried with the same ``event_id`` until ``deadline_s``;
        raises ``AppendFailed`` (holding the unacked events) after that, ``AppendRejected`` if the
        server refuses one for good. A retried event may land after events that followed it.
        """
        if not events:
            return []
        await self._ensure_subscribed()
        encode = self._codec.encode
        payloads = [(subject_for(e), encode(e), e.event_id) for e in events]
        results: list[AppendResult | None] = [None] * len(events)
        todo = list(range(len(events)))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._deadline_s
        attempt = 0
        reason = "not sent"
        while todo:
            outcomes = await self._send_window_pipelined([payloads[i] for i in todo])
            still: list[int] = []
            for index, outcome in zip(todo, outcomes, strict=True):
                if outcome.rejected is not None:
                    subject, _, event_id = payloads[index]
                    raise AppendRejected(event_id, subject, outcome.rejected)
                if outcome.result is None:
                    still.append(index)
                    reason = outcome.retry_reason or reason
                else:
                    results[index] = outcome.result
            todo = still
            if not todo:
                break
            attempt += 1
            delay = min(0.05 * 2**attempt, 2.0)
            if loop.time() + delay > deadline:
                raise AppendFailed([events[i] for i in todo], reason)
            log.warning(
                "append: %d unacked (%s); retry %d in %.2fs", len(todo), reason, attempt, delay
            )
            await asyncio.sleep(
                delay
            )  # capped backoff between retry rounds, not a wait for a result
        return [r for r in results if r is not None]

    async def _send_window_pipelined(
        self, payloads: list[tuple[str, bytes, str]]
    ) -> list[_Outcome]:
        window = _Window(len(payloads))
        tokens: list[str | None] = [None] * len(payloads)
        failed: dict[int, _Outcome] = {}
        pending = self._pending
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(
                loop.time() + self._deadline_s
            ):  # bounds even a stuck publish
                await self._publish_all(payloads, window, tokens, failed)
                await window.wait(until_outstanding=0, timeout_s=self._ack_timeout_s)
        except TimeoutError:
            log.warning(
                "append: a pass of %d events did not finish within %.0fs",
                len(payloads),
                self._deadline_s,
            )
        finally:
            for token in tokens:
                if token is not None:
                    pending.pop(
                        token, None
                    )  # late acks of this pass are ignored; retries use new tokens
        outcomes: list[_Outcome] = []
        no_ack = _Outcome(retry_reason=f"no ack within {self._ack_timeout_s}s")
        for index, msg in enumerate(window.acks):
            if index in failed:
                outcomes.append(failed[index])
            elif msg is None:
                outcomes.append(no_ack)
            else:
                outcomes.append(self._check_ack(msg))
        return outcomes

    async def _publish_all(
        self,
        payloads: list[tuple[str, bytes, str]],
        window: _Window,
        tokens: list[str | None],
        failed: dict[int, _Outcome],
    ) -> None:
        """Publish the pass; stops early (the rest is retried) when acks stall for ``ack_timeout_s``."""
        publish = self._client.publish
        pending = self._pending
        prefix = self._reply_prefix
        half = self._window // 2
        for index, (subject, data, event_id) in enumerate(payloads):
            token = str(next(self._tokens))
            pending[token] = (window, index)
            tokens[index] = token
            try:
                await publish(
                    subject, data, reply=prefix + token, headers={MSG_ID_HEADER: event_id}
                )
            except nats.errors.MaxPayloadError:
                del pending[token]
                failed[index] = _Outcome(
                    rejected=f"payload of {len(data)} bytes exceeds the server maximum"
                )
                continue
            except (nats.errors.Error, OSError) as e:
                del pending[token]
                failed[index] = _Outcome(retry_reason=f"publish failed: {type(e).__name__}")
                continue
            window.outstanding += 1
            # Back-pressure: let the oldest half of the window be acknowledged before sending more;
            # if acks stall (server gone), stop piling into the reconnect buffer.
            if window.outstanding >= self._window and not await window.wait(
                until_outstanding=half, timeout_s=self._ack_timeout_s
            ):
                return

    def _check_ack(self, msg: Msg) -> _Outcome:
        headers = msg.headers or {}
        status = headers.get("Status")
        if status is not None and not msg.data:
            # 503: no responders (stream missing or leader election) — retryable.
            return _Outcome(
                retry_reason=f"status {status} {headers.get('Description', '')}".strip()
            )
        try:
            ack = _ack_decoder.decode(msg.data)
        except msgspec.DecodeError:
            return _Outcome(retry_reason="unreadable PubAck")
        if ack.error is not None:
            description = f"{ack.error.description} (err_code {ack.error.err_code})"
            if ack.error.err_code in _PERMANENT_ERR_CODES:
                return _Outcome(rejected=description)
            return _Outcome(retry_reason=description)
        if ack.seq is None:
            return _Outcome(retry_reason="PubAck without seq")
        if ack.stream != self._stream:
            # The subject is bound to another stream: a configuration error no retry fixes.
            return _Outcome(rejected=f"stored in stream {ack.stream!r}, expected {self._stream!r}")
        return _Outcome(result=AppendResult(seq=ack.seq, duplicate=ack.duplicate))


async def probe(client: Client, *, timeout_s: float = 2.0) -> None:
    """Raise ``EventLogUnavailable`` unless the server answers a round trip within ``timeout_s``."""
    if not client.is_connected:
        raise EventLogUnavailable("not connected to NATS")
    try:
        await client.flush(timeout=max(1, int(timeout_s)))
    except (nats.errors.Error, TimeoutError) as e:
        raise EventLogUnavailable(f"NATS round trip failed: {type(e).__name__}") from e
