"""``aaltohub api``: serve the HTTP API against the configured (or running) stack."""

from __future__ import annotations

import argparse

from aaltohub import event_loop
from aaltohub.identity import ForeignStack
from aaltohub.logging_setup import configure_logging
from aaltohub.runtime import expected_identity, resolve_database_url, resolve_nats_url
from aaltohub.service_api import api_config, serve, uvicorn_config, verify_api_stack
from aaltohub.settings import load_settings
from aaltohub.stack_file import StackNotRunning
from api.logs import RequestIdFilter


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    settings = load_settings()
    # Secrets and tokens scrubbed from every line (uvicorn's included); request ids on each.
    configure_logging(settings).addFilter(RequestIdFilter())
    try:
        config = api_config(
            settings,
            nats_url=resolve_nats_url(settings, role="api"),
            database_url=resolve_database_url(settings, role="api"),
            duckdb_path=settings.duckdb_file,
        )
    except StackNotRunning as e:
        print(f"aaltohub api: {e}")
        return 1
    uv = uvicorn_config(
        config,
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        log_level=settings.log_level,
        max_connections=settings.api_max_connections,
        header_timeout_s=settings.api_header_timeout_s,
        write_stall_s=settings.api_write_stall_s,
    )
    try:
        event_loop.run(verify_api_stack(config, expected=expected_identity(settings)))
    except ForeignStack as e:
        print(f"aaltohub api: {e}")
        return 1
    try:
        event_loop.run(
            serve(uv, handle_signals=True)
        )  # uvicorn turns SIGINT/SIGTERM into a graceful stop
    except KeyboardInterrupt:  # uvicorn re-raises the captured SIGINT after its graceful shutdown
        pass
    return 0
