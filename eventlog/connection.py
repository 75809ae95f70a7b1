"""Connecting to NATS: reconnect forever once connected, bounded wait for the first connect."""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import nats
from nats.aio.client import Client

from eventlog.errors import EventLogAuthFailed, EventLogUnavailable
from eventlog.wire import DeliveryHandler, DirectHandler, FastParser

log = logging.getLogger(__name__)

# nats-py buffers publishes while reconnecting up to this many bytes (DEFAULT_PENDING_SIZE is 2 MiB);
# beyond it publish raises and the appender retries, so keep it moderate.
PENDING_BUFFER_BYTES: Final = 16 * 1024 * 1024
# How long a close waits for the subscriptions to drain (nats-py's default is 30 s); after it
# nats-py gives the drain up by itself (EventLog._drain bounds the whole close a little longer).
DRAIN_TIMEOUT_S: Final = 3
# Error texts of the server's -ERR lines (nats-server server/errors.go), as nats-py passes them on.
AUTHORIZATION_VIOLATION: Final = "Authorization Violation"
PERMISSIONS_VIOLATION: Final = "Permissions Violation"


async def connect(
    url: str,
    *,
    name: str,
    connect_timeout_s: float = 10.0,
    reconnect_wait_s: float = 0.5,
) -> LogClient:
    """Connect to ``url`` (one URL, or a comma-separated list: the nodes of a cluster); raise
    ``EventLogUnavailable`` if no server answers in ``connect_timeout_s``, ``EventLogAuthFailed``
    (at once) if the server refuses the credentials in the URL."""
    loop = asyncio.get_running_loop()
    refused: asyncio.Future[None] = loop.create_future()

    async def on_error(e: Exception) -> None:
        text = str(e)
        if AUTHORIZATION_VIOLATION in text and not client.is_connected:
            if not refused.done():
                refused.set_result(None)
            return
        if PERMISSIONS_VIOLATION in text:
            # The server refused one publish or subscribe; the connection stays up.
            log.error("nats refused: %s", text.removeprefix("nats: ").strip("'"))
            return
        log.warning("nats error: %s", type(e).__name__)

    async def on_disconnect() -> None:
        if not client.is_closed:  # closing on purpose also reports a disconnect
            log.info("nats disconnected; reconnecting")

    async def on_reconnect() -> None:
        log.info("nats reconnected")

    client = LogClient()
    connecting = asyncio.ensure_future(
        client.connect(
            servers=[u.strip() for u in url.split(",") if u.strip()],
            name=name,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=reconnect_wait_s,  # type: ignore[arg-type]
            connect_timeout=max(1, int(min(connect_timeout_s, 5))),
            pending_size=PENDING_BUFFER_BYTES,
            drain_timeout=DRAIN_TIMEOUT_S,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
        )
    )
    try:
        await asyncio.wait(
            {connecting, refused}, timeout=connect_timeout_s, return_when="FIRST_COMPLETED"
        )
    except BaseException:
        # Cancelled meanwhile: the socket (half-open, or connected at that moment) is closed here;
        # left to the garbage collector, asyncio reports its transport after the loop has closed.
        connecting.cancel()
        await asyncio.gather(connecting, return_exceptions=True)
        await _close_quietly(client)
        raise
    if not connecting.done():
        connecting.cancel()
        await asyncio.gather(connecting, return_exceptions=True)
    error = None if connecting.cancelled() else connecting.exception()
    if error is not None and not isinstance(error, TimeoutError | OSError | nats.errors.Error):
        await _close_quietly(client)
        raise error
    if connecting.cancelled() or error is not None:
        await _close_quietly(client)
        if refused.done():
            raise EventLogAuthFailed(
                f"NATS at {_redact(url)} refused the credentials of {_user(url)!r}"
            )
        raise EventLogUnavailable(
            f"no NATS server answered at {_redact(url)} within {connect_timeout_s}s"
        ) from error
    return client


async def _close_quietly(client: LogClient) -> None:
    try:
        await asyncio.wait_for(client.close(), timeout=2)
    except (TimeoutError, nats.errors.Error, OSError):
        pass
    finally:
        await client.release()


class LogClient(Client):
    """A nats-py client that can hand the messages of chosen subscriptions straight to a plain function
    as ``(subject, reply, payload, raw header block or None)`` bytes, in wire order.

    nats-py delivers every message by parsing its headers (events carry ``Nats-Msg-Id``), building a
    ``Msg``, queueing it and awaiting an async callback from the subscription's task: about half of a
    replay's CPU (docs/decisions/005-direct-delivery-for-reads.md). Direct delivery skips all of that, and its
    parser (``eventlog.wire``) reads message lines without regular expressions.
    """

    def __init__(self) -> None:
        super().__init__()
        self._direct: dict[int, DirectHandler] = {}
        self._deliveries: dict[bytes, DeliveryHandler] = {}
        self._ps = FastParser(self, self._direct, self._deliveries)

    async def release(self) -> None:
        """Make sure the connection is gone: stop the client's and its subscriptions' tasks and
        close its socket.

        nats-py's close marks the client closed first and closes the socket last, after steps that
        can wait forever on a stalled server (writing what is pending, waiting for the socket to
        close). A close cut short by a timeout thus left the socket open, with the client already
        reporting itself closed. Idempotent, and harmless after a close that finished."""
        tasks = (
            self._reading_task,
            self._ping_interval_task,
            self._flusher_task,
            self._reconnection_task,
        )
        for task in tasks:
            if task is not None and not task.done():
                task.cancel()
        # As nats-py's close does: the subscriptions' delivery tasks and waiting readers end too
        # (a task left pending is destroyed with the client, and asyncio reports it).
        for sub in self._subs.values():
            if sub._wait_for_msgs_task is not None and not sub._wait_for_msgs_task.done():
                sub._wait_for_msgs_task.cancel()
            if sub._message_iterator is not None:
                sub._message_iterator._cancel()
            for waiting in (sub._pending_next_msgs_calls or {}).values():
                waiting.cancel()
        self._subs.clear()
        self._status = Client.CLOSED
        # nats-py's TcpTransport keeps its asyncio streams here (the bare one under TLS).
        for name in ("_io_writer", "_bare_io_writer"):
            writer = getattr(self._transport, name, None)
            if isinstance(writer, asyncio.StreamWriter):
                # A closing socket still waits to write out its buffer; abort drops it now.
                writer.transport.abort()
        await asyncio.sleep(0)  # the loop closes an aborted socket on its next turn

    def deliver_directly(
        self, sid: int, handler: DirectHandler | None, deliveries: DeliveryHandler | None = None
    ) -> None:
        """Route every message of subscription ``sid`` to ``handler`` (None: back to normal), and
        its JetStream deliveries (whole, with the ack subject's first form) to ``deliveries`` if
        given: ``(subject, stream seq, pending, payload)``, headers not read."""
        key = str(sid).encode()
        if handler is None:
            self._direct.pop(sid, None)
            self._deliveries.pop(key, None)
            return
        self._direct[sid] = handler
        if deliveries is None:
            self._deliveries.pop(key, None)
        else:
            self._deliveries[key] = deliveries

    async def publish_commands(self, commands: bytes, *, messages: int, payload_bytes: int) -> None:
        """Queue pre-built ``PUB``/``HPUB`` commands (``eventlog.wire``) like ``publish`` queues one.

        Same rules as nats-py's ``publish``: refused once closed or draining, and while
        reconnecting only as long as the reconnect buffer has room (``OutboundBufferLimitError``).
        """
        if self.is_closed:
            raise nats.errors.ConnectionClosedError
        if self.is_draining_pubs:
            raise nats.errors.ConnectionDrainingError
        if not self.is_connected and (
            self._max_pending_size <= 0
            or len(commands) + self._pending_data_size > self._max_pending_size
        ):
            raise nats.errors.OutboundBufferLimitError
        self.stats["out_msgs"] += messages
        self.stats["out_bytes"] += payload_bytes
        await self._send_command(commands)
        if self._flush_queue is not None and self._flush_queue.empty():
            await self._flush_pending()

    async def _process_msg(
        self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None
    ) -> None:
        handler = self._direct.get(sid)
        if handler is not None:
            self.stats["in_msgs"] += 1
            self.stats["in_bytes"] += len(data)
            handler(subject, reply, data, headers)
            return
        await super()._process_msg(
            sid, subject, reply, data, headers or b""
        )  # nats-py: empty = no headers


def _redact(url: str) -> str:
    """Drop credentials from a URL before it goes into a message."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


def _user(url: str) -> str:
    """The user name of ``url`` (``anonymous`` without userinfo)."""
    rest = url.partition("://")[2]
    if "@" not in rest:
        return "anonymous"
    return rest.rsplit("@", 1)[0].split(":", 1)[0]
