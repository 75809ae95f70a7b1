"""The API's HTTP and WebSocket protocols: uvicorn's, with a header deadline, a connection limit
and a bound on how long a peer may leave our writes unread.

Uvicorn closes idle keep-alive connections but never a connection that is still sending its
request line and headers, and it accepts every connection (``limit_concurrency`` only answers 503
once a request is complete): 10,000 slow-header connections exhausted the process's file
descriptors. A live client that stops reading kept its socket, its buffers and its task forever:
uvicorn's sends wait for the transport to drain, and ``close()`` waits for the buffer to flush.

Here a connection that has not completed its headers within ``header_timeout_s`` gets 408 and is
closed, one beyond ``max_connections`` gets 503 and is closed at once, and one whose peer has not
read for ``write_stall_s`` while we had data to send is aborted (connection reset), which ends the
request's task (docs/decisions/025-bounded-api-resources.md).
"""

from __future__ import annotations

import asyncio
from typing import Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


def _plain_response(status: bytes, text: str, *extra: bytes) -> bytes:
    body = text.encode()
    head = [
        b"HTTP/1.1 " + status,
        b"content-type: text/plain; charset=utf-8",
        b"content-length: " + str(len(body)).encode(),
        b"connection: close",
        *extra,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


_TIMEOUT_RESPONSE: Final = _plain_response(
    b"408 Request Timeout", "request line and headers not received in time"
)
_BUSY_RESPONSE: Final = _plain_response(
    b"503 Service Unavailable", "too many connections; retry later", b"retry-after: 1"
)


class WriteStall:
    """Aborts a transport whose writing stays paused (peer not reading) for ``timeout_s``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self._loop = loop
        self._timeout_s = timeout_s
        self._timer: asyncio.TimerHandle | None = None

    def paused(self, transport: asyncio.BaseTransport) -> None:
        """The write buffer passed its high-water mark: start the clock."""
        if self._timer is None:
            self._timer = self._loop.call_later(self._timeout_s, self._abort, transport)

    def resumed(self) -> None:
        """The peer read: stop the clock."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _abort(self, transport: asyncio.BaseTransport) -> None:
        self._timer = None
        if isinstance(transport, asyncio.WriteTransport):
            transport.abort()  # close() would wait for the unread buffer to flush, i.e. forever


class _WriteStallBound:
    """Mixin for a uvicorn protocol: the connection is aborted when the peer leaves our writes
    unread for ``write_stall_s``. Listed before the protocol class, so ``super()`` reaches it."""

    write_stall_s: float = 30.0

    _stall: WriteStall | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the connection's write-stall clock (stopped until writing pauses)."""
        super().connection_made(transport)  # type: ignore[misc]
        self._stall = WriteStall(asyncio.get_running_loop(), self.write_stall_s)

    def pause_writing(self) -> None:
        """The peer stopped reading: it has ``write_stall_s`` to start again."""
        super().pause_writing()  # type: ignore[misc]
        if self._stall is not None:
            self._stall.paused(self.transport)  # type: ignore[attr-defined]

    def resume_writing(self) -> None:
        """The peer reads again."""
        super().resume_writing()  # type: ignore[misc]
        if self._stall is not None:
            self._stall.resumed()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the clock with the connection."""
        if self._stall is not None:
            self._stall.resumed()
        super().connection_lost(exc)  # type: ignore[misc]


class BoundedHttpProtocol(_WriteStallBound, HttpToolsProtocol):
    """``HttpToolsProtocol`` with a header deadline, a connection limit and a write-stall bound."""

    header_timeout_s: float = 10.0
    max_connections: int = 1000

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Register the connection; refuse it beyond the limit, else start the header deadline."""
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(_BUSY_RESPONSE)
            transport.close()
            return
        self._start_header_timer()

    def on_message_begin(self) -> None:
        """A request starts: its headers must be complete within the deadline (keep-alive too)."""
        super().on_message_begin()
        self._start_header_timer()

    def on_headers_complete(self) -> None:
        """The headers are in: the deadline is met."""
        self._cancel_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the header deadline with the connection."""
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _start_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()


class BoundedWebSocketProtocol(_WriteStallBound, WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, aborted when the peer leaves writes unread too long."""


def bounded_protocols(
    *, header_timeout_s: float, max_connections: int, write_stall_s: float
) -> tuple[type[BoundedHttpProtocol], type[BoundedWebSocketProtocol]]:
    """HTTP and WebSocket protocol classes with these bounds (uvicorn instantiates them itself)."""
    http = type(
        "BoundedHttpProtocol",
        (BoundedHttpProtocol,),
        {
            "header_timeout_s": header_timeout_s,
            "max_connections": max_connections,
            "write_stall_s": write_stall_s,
        },
    )
    ws = type(
        "BoundedWebSocketProtocol", (BoundedWebSocketProtocol,), {"write_stall_s": write_stall_s}
    )
    return http, ws
