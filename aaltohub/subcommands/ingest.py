"""``aaltohub ingest``: run the ingest service alone until SIGTERM/Ctrl-C (then drain and stop)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine

from aaltohub import event_loop
from aaltohub.identity import ForeignStack
from aaltohub.logging_setup import configure_logging
from aaltohub.runtime import expected_identity, resolve_database_url, resolve_nats_url
from aaltohub.service_ingest import run_ingest_service
from aaltohub.settings import load_settings
from aaltohub.signals import on_signals
from aaltohub.stack_file import StackNotRunning
from ingest.durable.errors import AppendPathError


def run(args: argparse.Namespace) -> int:
    """Run the ingest service in the foreground; SIGTERM and SIGINT shut it down in phases."""
    settings = load_settings()
    configure_logging(settings)  # secrets and tokens scrubbed from every line
    try:
        nats_url = resolve_nats_url(settings, role="ingest")
    except StackNotRunning as e:
        print(f"aaltohub ingest: {e}")
        return 1
    try:
        database_url: str | None = resolve_database_url(settings, role="ingest")
    except StackNotRunning:
        database_url = None  # only the Telegram workers need Postgres (sessions, entity cache)
    try:
        event_loop.run(
            serve_until_signalled(
                run_ingest_service(
                    settings,
                    nats_url=nats_url,
                    database_url=database_url,
                    demo=bool(args.demo),
                    expected=expected_identity(settings),
                )
            )
        )
    except (AppendPathError, ForeignStack) as e:
        print(f"aaltohub ingest: {e}")
        return 1
    return 0


async def serve_until_signalled(service: Coroutine[None, None, None]) -> None:
    """Run ``service``; the first SIGTERM or SIGINT cancels it (it drains and stops), a second one
    does not cut the drain short. The signals' handlers are back as they were when it ends."""
    task = asyncio.create_task(service, name="ingest")
    loop = asyncio.get_running_loop()
    stopping = False

    def stop() -> None:
        nonlocal stopping
        if not stopping:  # a second signal must not interrupt the drain
            stopping = True
            logging.getLogger(__name__).info("ingest: signal received; shutting down")
            task.cancel()

    with (
        on_signals(loop, (signal.SIGTERM, signal.SIGINT), stop),
        contextlib.suppress(asyncio.CancelledError),
    ):
        await task
