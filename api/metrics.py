"""Prometheus metrics of one app (own registry) and the ASGI middleware that records them."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.logs import request_id_var

access_log = logging.getLogger("api.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ApiMetrics:
    """The app's metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_latency = Histogram(
            "aaltohub_api_request_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.live_subscribers = Gauge(
            "aaltohub_api_live_subscribers", "Connected live clients", registry=self.registry
        )
        self.live_overflows = Gauge(
            "aaltohub_api_live_overflows",
            "Live clients cut off for falling behind",
            registry=self.registry,
        )
        self.projection_lag = Gauge(
            "aaltohub_projection_lag_events",
            "Log last seq minus projection checkpoint",
            ["projection"],
            registry=self.registry,
        )
        self.stream_last_seq = Gauge(
            "aaltohub_stream_last_seq", "Last seq of the log", registry=self.registry
        )
        self.live_connections = Counter(
            "aaltohub_api_live_connections",
            "Live connections opened",
            ["transport"],
            registry=self.registry,
        )


class RequestMiddleware:
    """Request id (``X-Request-ID``), latency histogram and one structured access-log line per request."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap one HTTP request (websockets pass through with a request id)."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        rid = incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if scope["type"] == "http":
                elapsed = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", "unmatched")
                self.metrics.request_latency.labels(scope["method"], route, str(status)).observe(
                    elapsed
                )
                # Path template only: query strings may carry an access token.
                access_log.info(
                    "%s %s %s",
                    scope["method"],
                    route,
                    status,
                    extra={
                        "request_id": rid,
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            request_id_var.reset(token)


def _header(scope: dict[str, Any] | Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            try:
                return str(value.decode("latin-1"))
            except UnicodeDecodeError:
                return None
    return None
