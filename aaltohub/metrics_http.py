"""Serving a service's Prometheus registry on its own port (``/metrics``), for ``aaltohub ingest``
and ``aaltohub project``; ``aaltohub up`` serves each service's on its port and lists them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, start_http_server

log = logging.getLogger(__name__)


@contextlib.contextmanager
def serving_metrics(
    registry: CollectorRegistry, *, service: str, host: str, port: int | None
) -> Iterator[None]:
    """Serve ``registry`` at ``http://host:port/metrics`` while inside; ``port`` None (or 0) turns it
    off. A port already taken is a warning, not a failure: the service runs without metrics."""
    if not port:
        yield
        return
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        log.warning("%s: metrics not served on %s:%d (%s)", service, host, port, e)
        yield
        return
    log.info("%s: metrics at http://%s:%d/metrics", service, host, port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
