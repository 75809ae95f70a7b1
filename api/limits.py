"""Request bodies are bounded before anything reads them, in size and in time.

A body is read whole by the JSON parser before the endpoint's dependencies (authentication
included) run, so an unbounded body was memory anyone could spend: 400 MiB cost 1.2 GB of RSS
before the 401. This outermost middleware answers 413 when ``Content-Length`` is above the limit,
and cuts a chunked body off with 413 once it passes the limit. A body whose next part does not
arrive within ``timeout_s`` (a client trickling it to hold the connection) gets 408.

A client without ``Expect: 100-continue`` sends its whole body before it reads the answer, and a
server that closes with the body unread makes the kernel reset the connection: the client saw a
reset, not the 413 (a 4 MiB upload on loopback). So a declared body up to ``drain_max_bytes`` is
read and dropped (never kept: at most uvicorn's 64 KiB buffer at a time) within ``timeout_s``
before the 413; a larger one, or one announced with ``Expect: 100-continue``, is answered at once.
"""

from __future__ import annotations

import asyncio
import json
from typing import Final

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024  # the largest request we take is an admin SQL query
DEFAULT_DRAIN_MAX_BYTES: Final = 64 * 1024 * 1024  # read and dropped so the client sees its 413


class BodyTooLarge(HTTPException):
    """A chunked body passed the limit while it was being read (an HTTPException, so FastAPI's body
    parsing passes it on and the error handlers answer 413 as a problem document)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(status_code=413, detail=f"request bodies are limited to {max_bytes} bytes")


class BodyTooSlow(HTTPException):
    """The next part of the body did not arrive in time."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            status_code=408,
            detail=f"the request body stalled for {timeout_s:g} s",
            headers={"Connection": "close"},  # a stalling client does not keep the connection
        )


class BodySizeLimit:
    """ASGI middleware: 413 for an HTTP request body over ``max_bytes``, 408 for one that stalls."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int = DEFAULT_MAX_BODY_BYTES,
        timeout_s: float = 30.0,
        drain_max_bytes: int = DEFAULT_DRAIN_MAX_BYTES,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.drain_max_bytes = drain_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse or meter the body of an HTTP request; pass everything else through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            if declared <= self.drain_max_bytes and not _expects_continue(scope):
                await _drain(receive, timeout_s=self.timeout_s)
            await _refuse(send, self.max_bytes)
            return
        seen = 0
        started = False
        body_done = False

        async def metered() -> Message:
            nonlocal seen, body_done
            if body_done:  # later receives only wait for a disconnect (streaming responses)
                return await receive()
            try:
                async with asyncio.timeout(self.timeout_s):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow(self.timeout_s) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, metered, tracking)
        except BodyTooLarge:
            if not started:
                await _refuse(send, self.max_bytes)
        except BodyTooSlow as e:
            if not started:
                await _problem(send, 408, "Request Timeout", str(e.detail))


async def _drain(receive: Receive, *, timeout_s: float) -> None:
    """Read and drop a refused body (its size was checked) until it ends, for ``timeout_s`` at most."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return
    except TimeoutError:
        return


def _expects_continue(scope: Scope) -> bool:
    """The client waits for ``100 Continue`` before it sends the body (reading would ask for it)."""
    return any(
        name == b"expect" and value.lower() == b"100-continue"
        for name, value in scope.get("headers", [])
    )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, max_bytes: int) -> None:
    await _problem(
        send, 413, "Payload Too Large", f"request bodies are limited to {max_bytes} bytes"
    )


async def _problem(send: Send, status: int, title: str, detail: str) -> None:
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
