"""``EventLog``: the one object the services use to talk to the log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Final

import nats
from nats.js.client import JetStreamContext

from eventlog.append import Appender, probe
from eventlog.commands import CommandHandler, CommandServer, send_command
from eventlog.connection import DRAIN_TIMEOUT_S, LogClient, connect
from eventlog.errors import EventLogUnavailable, ForeignStream, ReadFailed
from eventlog.read import StreamReader
from eventlog.records import AppendResult, BadRecord, RawRecord, Record, StreamInfo
from eventlog.stream import ensure_stream, foreign_reason, stream_info
from schemas.codec import Codec
from schemas.commands import Command, CommandReply
from schemas.errors import SchemaError
from schemas.events import Event
from schemas.stream import STACK_ID_KEY, StreamSpec

# Headers travel in the same NATS message as the payload and count towards its limit.
_HEADER_ROOM: Final = 1024


class EventLog:
    """Append to, read from and follow the JetStream log; an async context manager."""

    def __init__(
        self,
        client: LogClient,
        *,
        spec: StreamSpec,
        codec: Codec,
        ack_timeout_s: float,
        append_deadline_s: float,
    ) -> None:
        self._client = client
        self._js: JetStreamContext = client.jetstream(timeout=10)
        self._spec = spec
        self.codec = codec
        self._appender = Appender(
            client,
            stream=spec.name,
            codec=codec,
            ack_timeout_s=ack_timeout_s,
            deadline_s=append_deadline_s,
        )

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        spec: StreamSpec | None = None,
        codec: Codec | None = None,
        name: str = "aaltohub",
        connect_timeout_s: float = 10.0,
        ack_timeout_s: float = 5.0,
        append_deadline_s: float = 30.0,
        ensure: bool = True,
    ) -> EventLog:
        """Connect to NATS at ``url`` and (by default) create or update the stream."""
        client = await connect(url, name=name, connect_timeout_s=connect_timeout_s)
        log = cls(
            client,
            spec=spec or StreamSpec(),
            codec=codec or Codec(),
            ack_timeout_s=ack_timeout_s,
            append_deadline_s=append_deadline_s,
        )
        if ensure:
            try:
                await log.ensure_stream()
            except BaseException:
                await log.close()
                raise
        return log

    async def __aenter__(self) -> EventLog:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def stream_name(self) -> str:
        """Name of the log's stream."""
        return self._spec.name

    async def request(
        self, subject: str, command: Command, *, timeout_s: float = 5.0
    ) -> CommandReply:
        """Send ``command`` on ``subject`` and return the reply; ``NoCommandHandler`` when nobody
        serves it, ``EventLogUnavailable`` when no reply comes within ``timeout_s``."""
        return await send_command(self._client, subject, command, timeout_s=timeout_s)

    async def serve(
        self, subject: str, handler: CommandHandler, *, queue: str = ""
    ) -> CommandServer:
        """Serve commands on ``subject`` (wildcards allowed) until the returned server is stopped."""
        server = CommandServer(self._client, subject, handler, queue=queue)
        await server.start()
        return server

    @property
    def atomic_appends(self) -> bool | None:
        """True when appends go out as atomic batches, False for one publish per event, None until known."""
        return self._appender.atomic

    @property
    def max_event_bytes(self) -> int:
        """The largest encoded event an append can carry: the server's max payload and the stream's
        max message size, less room for the headers (``Nats-Msg-Id`` and the batch headers)."""
        return min(int(self._client.max_payload), self._spec.max_msg_size) - _HEADER_ROOM

    @property
    def connected(self) -> bool:
        """True while the connection to NATS is up."""
        return bool(self._client.is_connected)

    async def close(self) -> None:
        """Flush pending publishes and close the connection; bounded (~8 s) even if NATS is gone."""
        if self._client.is_closed:
            return
        try:
            # A server that does not answer a ping (stopped, stalled) cannot be drained: nats-py's
            # drain would outlive our timeout and leave its subscription gathers unretrieved.
            await asyncio.wait_for(self._client.flush(timeout=1), timeout=1.5)
            await self._drain(timeout_s=DRAIN_TIMEOUT_S + 2)
        except (nats.errors.Error, TimeoutError, OSError):
            try:
                await asyncio.wait_for(self._client.close(), timeout=2)
            except (nats.errors.Error, TimeoutError, OSError, RuntimeError):
                pass  # RuntimeError: uvloop refuses the final write to a transport a reconnect has closed
        finally:
            await self._client.release()

    async def _drain(self, *, timeout_s: float) -> None:
        """nats-py's drain, never cancelled: its own ``drain_timeout`` (shorter than ``timeout_s``)
        ends it. Cancelled from outside (a timeout, a cancelled close), it leaves the gather of its
        subscriptions' drains with an error nobody retrieves; asyncio logs that when the gather is
        collected, which can be in the middle of another ``ast.parse``, and CPython 3.11 then
        fails that parse ("AST constructor recursion depth mismatch")."""
        drain = asyncio.ensure_future(self._client.drain())
        drain.add_done_callback(_retrieve_error)
        done, _ = await asyncio.wait({drain}, timeout=timeout_s)
        if not done or drain.cancelled():
            raise TimeoutError("nats drain did not finish")
        error = drain.exception()
        if error is not None:
            raise error

    async def ensure_stream(self) -> None:
        """Create the stream or update it to the spec (idempotent)."""
        version = self._client.connected_server_version
        await ensure_stream(self._js, self._spec, server_version=(version.major, version.minor))
        self._appender.recheck_atomic()

    async def verify_stream(self, stack_id: str | None = None) -> str:
        """The stream's stack id; ``ForeignStream`` when the stream is not this stack's (another
        stack id than ``stack_id``, none at all, or other subjects, storage or retention)."""
        info = await self.info()
        reason = foreign_reason(info, self._spec, stack_id)
        if reason is not None:
            url = self._client.connected_url
            where = f"{url.hostname}:{url.port}" if url is not None else "?"
            raise ForeignStream(f"refusing the log at {where}: {reason}")
        return info.metadata[STACK_ID_KEY]

    async def probe(self, *, timeout_s: float = 2.0) -> None:
        """Raise ``EventLogUnavailable`` unless NATS answers a round trip in time."""
        await probe(self._client, timeout_s=timeout_s)

    async def append(self, event: Event) -> AppendResult:
        """Append one event (dedup by ``event_id``)."""
        return await self._appender.append(event)

    async def append_many(self, events: Sequence[Event]) -> list[AppendResult]:
        """Append events pipelined; see ``Appender.append_many`` for the guarantees."""
        return await self._appender.append_many(events)

    async def info(self) -> StreamInfo:
        """The stream's first/last seq, message count and size."""
        return await stream_info(self._js, self._spec.name)

    async def read_raw(
        self,
        from_seq: int = 1,
        *,
        to_seq: int | None = None,
        subjects: Sequence[str] | None = None,
        batch_size: int = 1000,
        max_wait_s: float = 0.05,
        follow: bool = False,
    ) -> AsyncIterator[list[RawRecord]]:
        """Undecoded records from ``from_seq`` in batches; to the end (or ``to_seq``) unless ``follow``."""
        reader = StreamReader(
            self._client,
            self._js,
            stream=self._spec.name,
            from_seq=from_seq,
            to_seq=to_seq,
            subjects=subjects,
            batch_size=batch_size,
            max_wait_s=max_wait_s,
            follow=follow,
        )
        async for batch in reader.batches():
            yield batch

    async def read(
        self,
        from_seq: int = 1,
        *,
        to_seq: int | None = None,
        subjects: Sequence[str] | None = None,
        batch_size: int = 1000,
        max_wait_s: float = 0.05,
        follow: bool = False,
    ) -> AsyncIterator[list[Record | BadRecord]]:
        """Decoded records from ``from_seq``; undecodable ones come as ``BadRecord`` (never raise)."""
        decode = self.codec.decode
        async for batch in self.read_raw(
            from_seq,
            to_seq=to_seq,
            subjects=subjects,
            batch_size=batch_size,
            max_wait_s=max_wait_s,
            follow=follow,
        ):
            out: list[Record | BadRecord] = []
            for raw in batch:
                try:
                    out.append(Record(raw.seq, raw.subject, decode(raw.data)))
                except SchemaError as e:
                    out.append(
                        BadRecord(raw.seq, raw.subject, raw.data, f"{type(e).__name__}: {e}")
                    )
            yield out

    def follow(
        self,
        from_seq: int = 1,
        *,
        subjects: Sequence[str] | None = None,
        batch_size: int = 1000,
        max_wait_s: float = 0.05,
    ) -> AsyncIterator[list[Record | BadRecord]]:
        """Like ``read`` but never ends: after catching up it waits for new appends."""
        return self.read(
            from_seq, subjects=subjects, batch_size=batch_size, max_wait_s=max_wait_s, follow=True
        )

    async def first_seq_at(self, when: datetime) -> int:
        """The first seq the server appended at or after ``when`` (last seq + 1 if none): a binary search
        over append times, which grow with seq. Where it cannot tell, it answers earlier, never later."""
        info = await self.info()
        if info.messages == 0:
            return info.last_seq + 1
        lo, hi = info.first_seq, info.last_seq + 1
        while lo < hi:
            mid = (lo + hi) // 2
            try:
                msg = await asyncio.wait_for(self._js.get_msg(self._spec.name, mid), timeout=5)
            except nats.js.errors.NotFoundError:
                return lo  # a gap in the stream: reading from an earlier seq is always safe
            except (nats.errors.Error, TimeoutError) as e:
                raise EventLogUnavailable(f"get seq {mid}: {type(e).__name__}") from e
            if msg.time is None or msg.time >= when:
                hi = mid
            else:
                lo = mid + 1
        return lo

    async def get(self, seq: int) -> Record | BadRecord:
        """The record at ``seq`` (direct get)."""
        try:
            msg = await asyncio.wait_for(self._js.get_msg(self._spec.name, seq), timeout=5)
        except nats.js.errors.NotFoundError as e:
            raise ReadFailed("no such record", seq=seq) from e
        except (nats.errors.Error, TimeoutError) as e:
            raise EventLogUnavailable(f"get seq {seq}: {type(e).__name__}") from e
        data = msg.data or b""
        subject = msg.subject or ""
        try:
            return Record(seq, subject, self.codec.decode(data))
        except SchemaError as e:
            return BadRecord(seq, subject, data, f"{type(e).__name__}: {e}")


def _retrieve_error(task: asyncio.Future[None]) -> None:
    """Mark a finished task's error as seen (``_drain`` raises it when it still waits)."""
    if not task.cancelled():
        task.exception()
