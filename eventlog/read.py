"""Reading the stream from a sequence: replay to the end, or follow live.

nats-py's ``fetch()`` costs ~60 µs per message (``next_msg`` + ``wait_for``) and reads ~17k msgs/s
here; callback delivery with two pull requests in flight reads 70k+/s
(docs/decisions/005-direct-delivery-for-reads.md). So we create an ephemeral ack-none consumer
starting at ``from_seq``, keep up to two ``CONSUMER.MSG.NEXT`` requests outstanding with
replies to one inbox, and take the inbox's messages straight from the protocol parser
(``LogClient.deliver_directly``: no ``Msg``, no header parsing, no per-message task; ~85k
records/s here). Memory is bounded: a new request is sent
only when the buffer has room.
If the consumer vanishes (server restart) or requests go unanswered, it is recreated from the
last delivered seq + 1, so a reader never skips or repeats a record.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Final

import msgspec
import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, ReplayPolicy
from nats.js.client import JetStreamContext

from eventlog.connection import LogClient
from eventlog.errors import EventLogUnavailable, ReadFailed
from eventlog.records import RawRecord

log = logging.getLogger(__name__)

_REQUESTS_IN_FLIGHT: Final = 2
_CONSUMER_IDLE_S: Final = 30.0  # server deletes a forgotten ephemeral consumer after this


class _Request:
    __slots__ = ("remaining", "sent_at")

    def __init__(self, remaining: int, sent_at: float) -> None:
        self.remaining = remaining
        self.sent_at = sent_at


class StreamReader:
    """One pass over the stream from ``from_seq``; iterate ``batches()`` once."""

    def __init__(
        self,
        client: LogClient,
        js: JetStreamContext,
        *,
        stream: str,
        from_seq: int,
        to_seq: int | None,
        subjects: Sequence[str] | None,
        batch_size: int,
        max_wait_s: float,
        follow: bool,
        request_timeout_s: float = 5.0,
    ) -> None:
        self._client = client
        self._js = js
        self._stream = stream
        self._next_seq = max(1, from_seq)
        self._to_seq = to_seq
        self._end_from_info = False  # to_seq is the stream's last seq when the read began
        self._subjects = list(subjects) if subjects else None
        self._batch_size = batch_size
        self._max_wait_s = max_wait_s
        self._follow = follow
        self._request_timeout_s = request_timeout_s
        # Replay asks for whatever is there; following long-polls so idle streams cost little.
        self._expires_s = 5.0 if follow else 1.0
        self._buffer: deque[RawRecord] = deque()
        self._arrived = asyncio.Event()
        self._requests: dict[str, _Request] = {}
        self._unaccounted = 0  # data messages not yet counted against their requests (_account)
        self._tokens = itertools.count()
        self._consumer: str | None = None
        self._inbox = client.new_inbox()
        self._caught_up = False
        self._consumer_lost = False
        self._last_delivered = self._next_seq - 1

    async def batches(self) -> AsyncIterator[list[RawRecord]]:
        """Yield lists of records in seq order; ends at ``to_seq``/the end unless following."""
        sub = await self._client.subscribe(f"{self._inbox}.*", pending_msgs_limit=-1)
        # Messages skip nats-py's Msg/queue/task path (eventlog.connection.LogClient).
        self._client.deliver_directly(sub._id, self._on_msg, self._on_delivery)
        loop = asyncio.get_running_loop()
        try:
            if not self._follow and self._to_seq is None:
                self._to_seq = await self._last_seq()
                self._end_from_info = True
            await self._create_consumer()
            while True:
                if self._done():
                    if self._buffer:
                        yield self._take(len(self._buffer))
                    return
                self._maintain_requests(loop.time())
                if len(self._buffer) < self._batch_size:
                    await self._wait_for_data(loop)
                if self._consumer_lost:
                    await self._recreate_consumer()
                    continue
                if self._buffer:
                    yield self._take(min(len(self._buffer), self._batch_size))
        finally:
            self._client.deliver_directly(sub._id, None)
            with contextlib.suppress(nats.errors.Error, TimeoutError, OSError):
                await asyncio.wait_for(sub.unsubscribe(), timeout=2)
            await self._delete_consumer()

    def _done(self) -> bool:
        if self._follow:
            return False
        if self._to_seq is not None and self._last_delivered >= self._to_seq:
            return True
        if self._end_from_info and not self._subjects:
            # The stream's last seq exists (no deletes) and is ours: read until it arrived. On a
            # cluster the consumer may sit on a replica still catching up (a restarted node),
            # whose "nothing pending" is not the end of the stream.
            return False
        return self._caught_up

    async def _wait_for_data(self, loop: asyncio.AbstractEventLoop) -> None:
        deadline = loop.time() + self._max_wait_s
        while len(self._buffer) < self._batch_size and not self._consumer_lost and not self._done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            self._account()
            if not self._requests:
                self._maintain_requests(loop.time())
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=min(remaining, 1.0))
            except TimeoutError:
                self._maintain_requests(loop.time())
                if self._buffer and not self._follow:
                    return

    def _take(self, n: int) -> list[RawRecord]:
        return [self._buffer.popleft() for _ in range(n)]

    def _account(self) -> None:
        """Count the data messages delivered since the last call against the requests, oldest first
        (the server serves them first come, first served); a request served in full is forgotten.
        Called before the requests are looked at: counting each message as it arrived cost ~0.13 µs
        of the reader's ~1.4 µs per message
        (docs/decisions/044-duckdb-rebuild-load-pipeline.md)."""
        delivered, self._unaccounted = self._unaccounted, 0
        requests = self._requests
        while delivered and requests:
            token = next(iter(requests))
            head = requests[token]
            counted = min(delivered, head.remaining)
            head.remaining -= counted
            delivered -= counted
            if head.remaining <= 0:
                del requests[token]

    def _maintain_requests(self, now: float) -> None:
        self._account()
        # Forget requests the server will never finish (lost across a reconnect).
        stale = [t for t, r in self._requests.items() if now - r.sent_at > self._expires_s + 3]
        for token in stale:
            del self._requests[token]
        if stale and not self._client.is_connected:
            return
        if stale:
            self._consumer_lost = True
            return
        if self._done():
            return
        while (
            len(self._requests) < _REQUESTS_IN_FLIGHT
            and len(self._buffer) + self._outstanding() < 2 * self._batch_size
            and self._client.is_connected
        ):
            self._send_request(now)

    def _outstanding(self) -> int:
        return sum(r.remaining for r in self._requests.values())

    def _send_request(self, now: float) -> None:
        assert self._consumer is not None
        token = str(next(self._tokens))
        self._requests[token] = _Request(self._batch_size, now)
        body = msgspec.json.encode(
            {"batch": self._batch_size, "expires": int(self._expires_s * 1e9)}
        )
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{self._stream}.{self._consumer}"
        task = asyncio.ensure_future(
            self._client.publish(subject, body, reply=f"{self._inbox}.{token}")
        )
        task.add_done_callback(_log_publish_failure)

    def _on_msg(self, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        if not reply.startswith(b"$JS.ACK."):
            self._on_status(subject, headers or b"")
            return
        tokens = reply.split(b".")
        # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending> (9 tokens), or the
        # v2 form with domain and account hash first (12 tokens): ADR-15.
        if len(tokens) >= 12:
            self._on_delivery(subject, int(tokens[7]), int(tokens[10]), data)
        else:
            self._on_delivery(subject, int(tokens[5]), int(tokens[8]), data)

    def _on_delivery(self, subject: bytes, seq: int, pending: int, data: bytes) -> None:
        # Data messages keep their stream subject. Most come here straight from the parser
        # (eventlog.wire), the rest through _on_msg.
        self._unaccounted += 1
        if seq <= self._last_delivered:
            return  # a redelivery after recreating the consumer
        self._last_delivered = seq
        self._buffer.append(RawRecord(seq, subject.decode(), data))
        if pending == 0 and not self._follow:
            self._caught_up = True
        self._arrived.set()

    def _on_status(self, subject: bytes, headers: bytes) -> None:
        # Status messages come to the request's own reply subject (inbox.<token>), headers like
        # b"NATS/1.0 404 No Messages\r\n\r\n" (ADR-9); they end the request.
        token = subject.decode()[len(self._inbox) + 1 :]
        self._account()
        self._requests.pop(token, None)
        status, _, description = (
            headers.split(b"\r\n", 1)[0].removeprefix(b"NATS/1.0").strip().partition(b" ")
        )
        if status == b"404" and not self._follow:
            self._caught_up = True  # nothing more to read right now
        elif status == b"409" and b"Deleted" in description:
            self._consumer_lost = True
        elif status == b"503":
            self._consumer_lost = True  # no responders: the consumer is gone
        self._arrived.set()

    async def _last_seq(self) -> int:
        try:
            info = await asyncio.wait_for(
                self._js.stream_info(self._stream), timeout=self._request_timeout_s
            )
        except nats.js.errors.NotFoundError as e:
            raise ReadFailed(f"stream {self._stream} does not exist") from e
        except (nats.errors.Error, TimeoutError) as e:
            raise EventLogUnavailable(f"stream {self._stream}: {type(e).__name__}") from e
        return int(info.state.last_seq)

    async def _create_consumer(self) -> None:
        start = self._last_delivered + 1
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            ack_policy=AckPolicy.NONE,
            replay_policy=ReplayPolicy.INSTANT,
            inactive_threshold=_CONSUMER_IDLE_S,
            mem_storage=True,
            num_replicas=1,
            max_waiting=16,
        )
        if self._subjects:
            if len(self._subjects) == 1:
                config.filter_subject = self._subjects[0]
            else:
                config.filter_subjects = self._subjects
        try:
            info = await asyncio.wait_for(
                self._js.add_consumer(self._stream, config), timeout=self._request_timeout_s
            )
        except nats.js.errors.NotFoundError as e:
            raise ReadFailed(f"stream {self._stream} does not exist", seq=start) from e
        except nats.js.errors.APIError as e:
            raise ReadFailed(f"cannot read {self._stream}: {e.description}", seq=start) from e
        except (nats.errors.Error, TimeoutError) as e:
            raise EventLogUnavailable(
                f"cannot create a consumer on {self._stream}: {type(e).__name__}"
            ) from e
        self._consumer = info.name
        self._consumer_lost = False
        self._requests.clear()
        self._unaccounted = 0
        if not self._follow and info.num_pending == 0:
            self._caught_up = True

    async def _recreate_consumer(self) -> None:
        await self._delete_consumer()
        delay = 0.1
        while True:
            try:
                await self._create_consumer()
                return
            except EventLogUnavailable:
                if not self._follow:
                    raise
                log.info("reader: waiting for NATS to recreate the consumer")
                await asyncio.sleep(delay)  # capped backoff while the server is away
                delay = min(delay * 2, 2.0)

    async def _delete_consumer(self) -> None:
        if self._consumer is None:
            return
        name, self._consumer = self._consumer, None
        with contextlib.suppress(nats.errors.Error, TimeoutError, OSError):
            await asyncio.wait_for(self._js.delete_consumer(self._stream, name), timeout=2)


def _log_publish_failure(task: asyncio.Future[None]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.info("pull request not sent: %s", type(error).__name__)
