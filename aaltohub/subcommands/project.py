"""``aaltohub project`` (run the projections) and ``aaltohub retry`` (re-apply dead letters)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Coroutine

from aaltohub import event_loop
from aaltohub.identity import ForeignStack
from aaltohub.logging_setup import configure_logging
from aaltohub.runtime import expected_identity, resolve_database_url, resolve_nats_url
from aaltohub.service_projector import build_projections, run_projections
from aaltohub.settings import Settings, load_settings
from aaltohub.signals import on_signals
from aaltohub.stack_file import StackNotRunning
from aaltohub.stream import stream_spec
from eventlog import EventLog, EventLogError, NoCommandHandler
from projector.deadletter import DeadLetterStore
from projector.errors import ProjectionError
from projector.records import Projection
from projector.service import retry_dead_letters
from schemas.commands import RetryDeadLetters, projector_subject


def run_project(args: argparse.Namespace) -> int:
    """Run projections until interrupted."""
    settings = load_settings()
    configure_logging(settings)  # secrets and tokens scrubbed from every line
    try:
        nats_url, database_url = (
            resolve_nats_url(settings, role="projector"),
            resolve_database_url(settings, role="projector"),
        )
    except StackNotRunning as e:
        print(f"aaltohub project: {e}")
        return 1
    try:
        with contextlib.suppress(KeyboardInterrupt):
            event_loop.run(
                run_until_sigterm(
                    run_projections(
                        settings,
                        nats_url=nats_url,
                        database_url=database_url,
                        duckdb_path=settings.duckdb_file,
                        names=args.projection,
                        expected=expected_identity(settings),
                    )
                )
            )
    except ForeignStack as e:
        print(f"aaltohub project: {e}")
        return 1
    return 0


async def run_until_sigterm(work: Coroutine[object, object, None]) -> None:
    """Run ``work``; SIGTERM cancels it, so the service shuts down in phases like on Ctrl-C. The
    signal's handler is back as it was when it ends."""
    task = asyncio.ensure_future(work)
    with (
        on_signals(asyncio.get_running_loop(), (signal.SIGTERM,), task.cancel),
        contextlib.suppress(asyncio.CancelledError),
    ):
        await task


def run_retry(args: argparse.Namespace) -> int:
    """Ask the running projector to retry; without one, retry here (Postgres, and DuckDB if its file is free)."""
    settings = load_settings()
    try:
        nats_url, database_url = (
            resolve_nats_url(settings, role="api"),
            resolve_database_url(settings, role="projector"),
        )
    except StackNotRunning as e:
        print(f"aaltohub retry: {e}")
        return 1
    command = RetryDeadLetters(
        dead_letter_ids=tuple(args.ids or ()), all_unresolved=bool(args.all), requested_by="cli"
    )
    return asyncio.run(_retry(settings, nats_url, database_url, command))


async def _retry(
    settings: Settings, nats_url: str, database_url: str, command: RetryDeadLetters
) -> int:
    async with await EventLog.connect(
        nats_url, spec=stream_spec(settings), ensure=False
    ) as event_log:
        try:
            reply = await event_log.request(projector_subject(command), command, timeout_s=120)
        except NoCommandHandler:
            pass
        except EventLogError as e:
            print(f"aaltohub retry: {e}")
            return 1
        else:
            print(reply.message)
            return 0 if reply.ok else 1
        store = DeadLetterStore(database_url=database_url)
        projections = build_projections(
            settings,
            names=settings.projection_names,
            database_url=database_url,
            duckdb_path=settings.duckdb_file,
            codec=event_log.codec,
            dead_letters=store,
        )
        opened: dict[str, Projection] = {}
        try:
            for p in projections:
                try:
                    await p.open()
                    opened[p.name] = p
                except ProjectionError as e:
                    print(f"skipping {p.name}: {e}")
            resolved, failed = await retry_dead_letters(opened, store, ids=command.dead_letter_ids)
        finally:
            for p in projections:
                await p.close()
            await store.close()
    print(f"resolved {resolved}, still failing {failed}")
    return 0 if failed == 0 else 1
