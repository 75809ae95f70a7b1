"""Atomic batch publish (JetStream ADR-50, nats-server >= 2.12): up to 1,000 events, one commit ack.

Each event of a batch carries ``Nats-Msg-Id`` plus ``Nats-Batch-Id`` and ``Nats-Batch-Sequence``;
the last one also ``Nats-Batch-Commit: 1`` and the only reply subject. The server stages the batch
and stores all of it or none, so with ``sync_interval: always`` one fsync covers the whole batch
instead of one per event (docs/decisions/014-atomic-batch-appends.md).

A batch the server refuses (an id it already holds: err_code 10201, after a lost commit ack; a
message too large; too many batches in flight) is published again event by event by the caller,
which stores the new ones and acks the known ones as duplicates. A batch whose commit ack never
comes is sent again as a new batch with the same ids.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Final

import msgspec
import nats
from nats.aio.msg import Msg

from eventlog.acks import AckRouter, AckWindow, pub_ack_decoder
from eventlog.connection import LogClient
from eventlog.records import AppendResult
from eventlog.wire import UnsafeBatch, atomic_batch_commands

log = logging.getLogger(__name__)

MSG_ID_HEADER: Final = "Nats-Msg-Id"  # JetStream dedup header (nats.docs jetstream/headers.md)
MAX_BATCH_EVENTS: Final = 1000  # ADR-50: the server refuses larger batches
# ADR-50: at most 50 batches in flight per stream, shared by every producer of the stream. Our cap
# is per stream too (all calls of one appender share it), at half the server's: two producers at
# full rate (an import next to ingest's backfill) stay under the server's limit.
DEFAULT_BATCHES_IN_FLIGHT: Final = 24
ATOMIC_DISABLED_ERR_CODE: Final = 10174  # JSAtomicPublishDisabledErr (nats-server errors.json)

Prepared = tuple[str, bytes, str]  # subject, payload, event_id


class BatchVerdict(msgspec.Struct):
    """What became of one batch: committed (``results``), to resend, or to publish event by event."""

    results: list[AppendResult] | None = None
    retry_reason: str | None = None
    one_by_one: str | None = None  # the server refused the batch; why
    unsupported: bool = False  # the server or the stream does not do atomic batches


class BatchSlots:
    """How many more batches the stream may have in flight, shared by every call of one appender."""

    def __init__(self, limit: int) -> None:
        self.free = limit
        self._released = asyncio.Event()

    async def take(self, *, timeout_s: float) -> bool:
        """Take a slot; False when none came free for ``timeout_s`` (acks stalled)."""
        while self.free <= 0:
            self._released.clear()
            try:
                async with asyncio.timeout(timeout_s):
                    await self._released.wait()
            except TimeoutError:
                if self.free <= 0:
                    return False
        self.free -= 1
        return True

    def give_back(self, count: int = 1) -> None:
        """Return ``count`` slots (a batch acked, refused, or given up on)."""
        if count > 0:
            self.free += count
            self._released.set()


class BatchSender:
    """Publishes prepared events as atomic batches, at most ``batches_in_flight`` per stream."""

    def __init__(
        self,
        client: LogClient,
        router: AckRouter,
        *,
        stream: str,
        batch_size: int = MAX_BATCH_EVENTS,
        batches_in_flight: int = DEFAULT_BATCHES_IN_FLIGHT,
        ack_timeout_s: float,
        deadline_s: float,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH_EVENTS}, got {batch_size}")
        self._client = client
        self._router = router
        self._stream = stream
        self._batch_size = batch_size
        self._slots = BatchSlots(max(1, batches_in_flight))
        self._ack_timeout_s = ack_timeout_s
        self._deadline_s = deadline_s

    def split(self, payloads: list[Prepared]) -> list[list[Prepared]]:
        """``payloads`` cut into batches of at most ``batch_size``, in order."""
        size = self._batch_size
        return [payloads[i : i + size] for i in range(0, len(payloads), size)]

    async def send(self, batches: list[list[Prepared]]) -> list[BatchVerdict]:
        """Publish ``batches`` in order; one verdict per batch."""
        window = AckWindow(len(batches), on_ack=self._slots.give_back)
        tokens: list[str | None] = [None] * len(batches)
        refused: dict[int, BatchVerdict] = {}
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(loop.time() + self._deadline_s):
                for index, batch in enumerate(batches):
                    if not await self._slots.take(timeout_s=self._ack_timeout_s):
                        break  # acks stalled (server gone): the rest is resent next round
                    token = self._router.expect(window, index)
                    tokens[index] = token
                    window.outstanding += 1
                    verdict = await self._publish(batch, self._router.reply_prefix + token)
                    if verdict is not None:
                        self._router.forget(token)
                        window.outstanding -= 1
                        self._slots.give_back()
                        refused[index] = verdict
                await window.wait(until_outstanding=0, timeout_s=self._ack_timeout_s)
        except TimeoutError:
            log.warning(
                "append: %d batches did not finish within %.0fs", len(batches), self._deadline_s
            )
        finally:
            for sent in tokens:
                if sent is not None:
                    # A late commit ack is ignored; a resend is a new batch with the same event ids.
                    self._router.forget(sent)
            # Batches given up on free their slots (the server abandons them after 10 s idle).
            self._slots.give_back(window.outstanding)
            window.outstanding = 0
        no_ack = BatchVerdict(retry_reason=f"no commit ack within {self._ack_timeout_s}s")
        verdicts: list[BatchVerdict] = []
        for index, (batch, msg) in enumerate(zip(batches, window.acks, strict=True)):
            if index in refused:
                verdicts.append(refused[index])
            elif msg is None:
                verdicts.append(no_ack)
            else:
                verdicts.append(self._verdict(batch, msg))
        return verdicts

    async def _publish(self, batch: list[Prepared], reply: str) -> BatchVerdict | None:
        """Publish one batch; a verdict only if it could not be sent whole."""
        try:
            commands, payload_bytes = atomic_batch_commands(
                batch,
                batch_id=uuid.uuid4().hex,
                reply=reply,
                max_payload=self._client.max_payload,
            )
        except nats.errors.MaxPayloadError:
            return BatchVerdict(one_by_one="an event exceeds the server's maximum payload")
        except UnsafeBatch as e:
            return BatchVerdict(one_by_one=str(e))
        try:
            await self._client.publish_commands(
                commands, messages=len(batch), payload_bytes=payload_bytes
            )
        except (nats.errors.Error, OSError) as e:
            return BatchVerdict(retry_reason=f"publish failed: {type(e).__name__}")
        return None

    def _verdict(self, batch: list[Prepared], msg: Msg) -> BatchVerdict:
        headers = msg.headers or {}
        status = headers.get("Status")
        if status is not None and not msg.data:
            # 503: no responders (stream missing or leader election): resend later.
            return BatchVerdict(
                retry_reason=f"status {status} {headers.get('Description', '')}".strip()
            )
        try:
            ack = pub_ack_decoder.decode(msg.data)
        except msgspec.DecodeError:
            return BatchVerdict(retry_reason="unreadable batch ack")
        if ack.error is not None:
            description = f"{ack.error.description} (err_code {ack.error.err_code})"
            return BatchVerdict(
                one_by_one=description, unsupported=ack.error.err_code == ATOMIC_DISABLED_ERR_CODE
            )
        if ack.batch is None:
            # A server without atomic publish stored the events one by one and acked the last one
            # only: publishing them again one by one confirms each (the rest come back as duplicates).
            return BatchVerdict(one_by_one="the server ignored the batch headers", unsupported=True)
        if ack.seq is None or ack.count != len(batch) or ack.stream != self._stream:
            return BatchVerdict(
                one_by_one=f"unexpected batch ack: stream {ack.stream!r}, count {ack.count}"
            )
        first = ack.seq - len(batch) + 1  # a committed batch occupies consecutive seqs (ADR-50)
        return BatchVerdict(results=[AppendResult(seq=first + i) for i in range(len(batch))])
