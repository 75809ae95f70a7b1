"""Credentials out of URLs: a query or subprotocol token becomes the ``Authorization`` header.

Browsers cannot set headers on a WebSocket or an ``EventSource``, so the live endpoints accept a
token as ``?access_token=`` (SSE, old clients) or as the WebSocket subprotocol ``bearer.<token>``
offered next to ``aaltohub.live``. Servers and proxies log request lines: uvicorn logs every
WebSocket handshake with its query string. This middleware runs first and rewrites the connection's
scope in place (the server logs from the same dict), so no token stays in the path or the offered
subprotocols of any later log line; the app reads credentials only from ``Authorization``.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

QUERY_TOKEN: Final = "access_token"
SUBPROTOCOL: Final = "aaltohub.live"  # the subprotocol the server accepts (echoed back)
BEARER_SUBPROTOCOL_PREFIX: Final = "bearer."


class TokenOutOfUrl:
    """ASGI middleware: moves ``?access_token=`` and a ``bearer.<token>`` subprotocol into ``Authorization``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Rewrite the scope of HTTP and WebSocket connections, then pass them on."""
        if scope["type"] in ("http", "websocket"):
            token = _take_query_token(scope)
            if scope["type"] == "websocket":
                token = _take_subprotocol_token(scope) or token
            if token and not any(name == b"authorization" for name, _ in scope["headers"]):
                scope["headers"] = [
                    *scope["headers"],
                    (b"authorization", b"Bearer " + token.encode("latin-1", "replace")),
                ]
        await self.app(scope, receive, send)


def _take_query_token(scope: Scope) -> str | None:
    raw: bytes = scope.get("query_string", b"")
    if QUERY_TOKEN.encode() not in raw:
        return None
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    token = next((value for key, value in pairs if key == QUERY_TOKEN), None)
    kept = [(key, value) for key, value in pairs if key != QUERY_TOKEN]
    scope["query_string"] = urlencode(kept).encode("latin-1")
    return token


def _take_subprotocol_token(scope: Scope) -> str | None:
    offered: list[str] = list(scope.get("subprotocols", []))
    tokens = [p for p in offered if p.startswith(BEARER_SUBPROTOCOL_PREFIX)]
    if not tokens:
        return None
    kept = [p for p in offered if not p.startswith(BEARER_SUBPROTOCOL_PREFIX)]
    scope["subprotocols"] = kept
    scope["headers"] = [
        (name, ", ".join(kept).encode("latin-1"))
        if name == b"sec-websocket-protocol"
        else (name, value)
        for name, value in scope["headers"]
    ]
    return tokens[0].removeprefix(BEARER_SUBPROTOCOL_PREFIX)
