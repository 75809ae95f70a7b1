"""Appending events: pipelined, every PubAck checked, ``Nats-Msg-Id`` on every event.

Where the stream allows it (``allow_atomic``, nats-server >= 2.12) events go out in atomic batches
of up to 1,000 with one commit ack each (``eventlog.batch``); otherwise, and for a batch the server
refuses, one publish per event. Either way the wait for acks is bounded, a pass stops when acks
stall (server gone), and unacknowledged events are retried with the *same* id: a lost ack never
becomes a lost or doubled event (docs/decisions/014-atomic-batch-appends.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Final

import msgspec
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from eventlog.acks import AckRouter, AckWindow, ApiErrorBody, Outcome, pub_ack_decoder
from eventlog.batch import (
    DEFAULT_BATCHES_IN_FLIGHT,
    MAX_BATCH_EVENTS,
    MSG_ID_HEADER,
    BatchSender,
    Prepared,
)
from eventlog.connection import LogClient
from eventlog.errors import AppendFailed, AppendRejected, EventLogClosed, EventLogUnavailable
from eventlog.records import AppendResult
from schemas.codec import Codec
from schemas.events import Event
from schemas.subjects import subject_for

log = logging.getLogger(__name__)

# JetStream API errors that no retry can fix (nats-server errors.json).
_PERMANENT_ERR_CODES: Final = frozenset(
    {
        10054,  # JSStreamMessageExceedsMaximumErr
        10077,  # JSStreamStoreFailedF (incl. maximum bytes/messages exceeded with discard=new)
    }
)


class _StreamConfigView(msgspec.Struct):
    allow_atomic: bool = False  # absent from the reply of a server older than 2.12


class _StreamInfoReply(msgspec.Struct):
    config: _StreamConfigView | None = None
    error: ApiErrorBody | None = None


_stream_info_decoder: Final = msgspec.json.Decoder(_StreamInfoReply)


class Appender:
    """Appends events to the stream; safe for concurrent use from one event loop.

    Acks are routed by reply token to a slot of the current pass, with no Future per message
    (docs/decisions/004-hand-rolled-publish.md).
    """

    def __init__(
        self,
        client: LogClient,
        *,
        stream: str,
        codec: Codec,
        window: int = 4000,
        ack_timeout_s: float = 5.0,
        deadline_s: float = 30.0,
        batch_size: int = MAX_BATCH_EVENTS,
        batches_in_flight: int = DEFAULT_BATCHES_IN_FLIGHT,
        atomic: bool | None = None,
    ) -> None:
        self._client = client
        self._stream = stream
        self._codec = codec
        self._window = window
        self._ack_timeout_s = ack_timeout_s
        self._deadline_s = deadline_s
        self._router = AckRouter(client)
        self._batches = BatchSender(
            client,
            self._router,
            stream=stream,
            batch_size=batch_size,
            batches_in_flight=batches_in_flight,
            ack_timeout_s=ack_timeout_s,
            deadline_s=deadline_s,
        )
        # None: ask the stream on the next append whether it allows atomic batches.
        self._atomic = atomic

    @property
    def atomic(self) -> bool | None:
        """True when appends go out as atomic batches, False for one publish per event, None until known."""
        return self._atomic

    def recheck_atomic(self) -> None:
        """Ask the stream again on the next append (after the stream config changed)."""
        self._atomic = None

    async def append(self, event: Event) -> AppendResult:
        """Append one event; returns its seq (or the original seq if it was a duplicate)."""
        return (await self.append_many([event]))[0]

    async def append_many(self, events: Sequence[Event]) -> list[AppendResult]:
        """Append events in order, pipelined; every ack is checked.

        Events not acknowledged are retried with the same ``event_id`` until ``deadline_s``;
        raises ``AppendFailed`` (holding the unacked events) after that, ``AppendRejected`` if the
        server refuses one for good, ``EventLogClosed`` (an ``AppendFailed``) at once once the log
        is closed. A retried event may land after events that followed it.
        """
        if not events:
            return []
        if self._client.is_closed:
            raise EventLogClosed(events)
        await self._router.ensure_subscribed()
        encode = self._codec.encode
        payloads = [(subject_for(e), encode(e), e.event_id) for e in events]
        results: list[AppendResult | None] = [None] * len(events)
        todo = list(range(len(events)))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._deadline_s
        attempt = 0
        reason = "not sent"
        while todo:
            if self._client.is_closed:
                # Closed on purpose (``EventLog.close``), maybe during this append: no retry can
                # succeed, so fail now rather than retry until the deadline.
                raise EventLogClosed([events[i] for i in todo])
            outcomes = await self._send([payloads[i] for i in todo])
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

    async def _send(self, payloads: list[Prepared]) -> list[Outcome]:
        """One pass over ``payloads``: atomic batches where the stream allows them, else one by one."""
        if len(payloads) < 2 or not await self._atomic_allowed():
            return await self._send_one_by_one(payloads)
        batches = self._batches.split(payloads)
        verdicts = await self._batches.send(batches)
        outcomes: list[Outcome] = []
        one_by_one: list[int] = []  # positions in payloads
        for batch, verdict in zip(batches, verdicts, strict=True):
            if verdict.unsupported and self._atomic:
                log.warning(
                    "append: atomic batches refused (%s); one publish per event from now on",
                    verdict.one_by_one,
                )
                self._atomic = False
            if verdict.results is not None:
                outcomes.extend(Outcome(result=r) for r in verdict.results)
            elif verdict.one_by_one is not None:
                log.info(
                    "append: batch of %d refused (%s); publishing it event by event",
                    len(batch),
                    verdict.one_by_one,
                )
                one_by_one.extend(range(len(outcomes), len(outcomes) + len(batch)))
                outcomes.extend(Outcome() for _ in batch)
            else:
                outcomes.extend(Outcome(retry_reason=verdict.retry_reason) for _ in batch)
        if one_by_one:
            singles = await self._send_one_by_one([payloads[i] for i in one_by_one])
            for position, outcome in zip(one_by_one, singles, strict=True):
                outcomes[position] = outcome
        return outcomes

    async def _atomic_allowed(self) -> bool:
        """Whether the stream takes atomic batches; asked once (an unanswered ask means not now)."""
        if self._atomic is None:
            subject = f"$JS.API.STREAM.INFO.{self._stream}"
            try:
                reply = await self._client.request(subject, b"", timeout=self._ack_timeout_s)
                info = _stream_info_decoder.decode(reply.data)
            except (nats.errors.Error, TimeoutError, OSError, msgspec.DecodeError) as e:
                log.info(
                    "append: stream info unavailable (%s); one publish per event for now",
                    type(e).__name__,
                )
                return False
            if info.error is not None or info.config is None:
                log.info(
                    "append: stream info refused (%s); one publish per event for now",
                    info.error.description if info.error else "no config",
                )
                return False
            self._atomic = info.config.allow_atomic
            log.info(
                "append: stream %s %s atomic batches",
                self._stream,
                "takes" if self._atomic else "does not take",
            )
        return self._atomic

    async def _send_one_by_one(self, payloads: list[Prepared]) -> list[Outcome]:
        window = AckWindow(len(payloads))
        tokens: list[str | None] = [None] * len(payloads)
        failed: dict[int, Outcome] = {}
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(loop.time() + self._deadline_s):  # bounds a stuck publish
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
                    self._router.forget(
                        token
                    )  # late acks of this pass are ignored; retries use new tokens
        outcomes: list[Outcome] = []
        no_ack = Outcome(retry_reason=f"no ack within {self._ack_timeout_s}s")
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
        payloads: list[Prepared],
        window: AckWindow,
        tokens: list[str | None],
        failed: dict[int, Outcome],
    ) -> None:
        """Publish the pass; stops early (the rest is retried) when acks stall for ``ack_timeout_s``."""
        publish = self._client.publish
        router = self._router
        prefix = router.reply_prefix
        half = self._window // 2
        for index, (subject, data, event_id) in enumerate(payloads):
            token = router.expect(window, index)
            tokens[index] = token
            try:
                await publish(
                    subject, data, reply=prefix + token, headers={MSG_ID_HEADER: event_id}
                )
            except nats.errors.MaxPayloadError:
                router.forget(token)
                failed[index] = Outcome(
                    rejected=f"payload of {len(data)} bytes exceeds the server maximum"
                )
                continue
            except (nats.errors.Error, OSError) as e:
                router.forget(token)
                failed[index] = Outcome(retry_reason=f"publish failed: {type(e).__name__}")
                continue
            window.outstanding += 1
            # Back-pressure: let the oldest half of the window be acknowledged before sending more;
            # if acks stall (server gone), stop piling into the reconnect buffer.
            if window.outstanding >= self._window and not await window.wait(
                until_outstanding=half, timeout_s=self._ack_timeout_s
            ):
                return

    def _check_ack(self, msg: Msg) -> Outcome:
        headers = msg.headers or {}
        status = headers.get("Status")
        if status is not None and not msg.data:
            # 503: no responders (stream missing or leader election) — retryable.
            return Outcome(retry_reason=f"status {status} {headers.get('Description', '')}".strip())
        try:
            ack = pub_ack_decoder.decode(msg.data)
        except msgspec.DecodeError:
            return Outcome(retry_reason="unreadable PubAck")
        if ack.error is not None:
            description = f"{ack.error.description} (err_code {ack.error.err_code})"
            if ack.error.err_code in _PERMANENT_ERR_CODES:
                return Outcome(rejected=description)
            return Outcome(retry_reason=description)
        if ack.seq is None:
            return Outcome(retry_reason="PubAck without seq")
        if ack.stream != self._stream:
            # The subject is bound to another stream: a configuration error no retry fixes.
            return Outcome(rejected=f"stored in stream {ack.stream!r}, expected {self._stream!r}")
        return Outcome(result=AppendResult(seq=ack.seq, duplicate=ack.duplicate))


async def probe(client: Client, *, timeout_s: float = 2.0) -> None:
    """Raise ``EventLogUnavailable`` unless the server answers a round trip within ``timeout_s``."""
    if not client.is_connected:
        raise EventLogUnavailable("not connected to NATS")
    try:
        await client.flush(timeout=max(1, int(timeout_s)))
    except (nats.errors.Error, TimeoutError) as e:
        raise EventLogUnavailable(f"NATS round trip failed: {type(e).__name__}") from e
