"""``aaltohub replay --projection NAME``: rebuild a projection from seq 1 and swap it in."""

from __future__ import annotations

import argparse

from aaltohub import event_loop
from aaltohub.logging_setup import configure_logging
from aaltohub.runtime import resolve_database_url, resolve_nats_url
from aaltohub.settings import Settings, load_settings
from aaltohub.stack_file import StackNotRunning
from aaltohub.stream import stream_spec
from eventlog import EventLog, EventLogError
from projector.errors import ProjectionError
from projector.rebuild import RebuildResult


def run(args: argparse.Namespace) -> int:
    """Rebuild and print the figures."""
    settings = load_settings()
    configure_logging(settings)
    try:
        nats_url = resolve_nats_url(settings, role="projector")
        database_url = (
            resolve_database_url(settings, role="projector")
            if args.projection == "postgres"
            else ""
        )
    except StackNotRunning as e:
        print(f"aaltohub replay: {e}")
        return 1
    try:
        result = event_loop.run(_rebuild(settings, nats_url, database_url, args))
    except (ProjectionError, EventLogError) as e:
        print(f"aaltohub replay: {e}")
        return 1
    print(
        f"{result.name}: rebuilt to seq {result.seq} ({result.events} events) in {result.total_s:.1f}s "
        f"({result.events_per_s:,.0f} events/s); {result.swapped}"
        + (
            f"; search index built {result.search_index_s:.1f}s after the swap"
            if result.search_index_s
            else ""
        )
    )
    return 0


async def _rebuild(
    settings: Settings, nats_url: str, database_url: str, args: argparse.Namespace
) -> RebuildResult:
    sized = {"batch_size": args.batch_size} if args.batch_size else {}
    async with await EventLog.connect(
        nats_url, spec=stream_spec(settings), ensure=False
    ) as event_log:
        # Only the chosen sink's rebuild is imported: a Postgres replay that loaded DuckDB and Arrow
        # would hold ~40 MB it never uses for its whole run (docs/decisions/048).
        if args.projection == "postgres":
            from projector.rebuild_postgres import rebuild_postgres

            return await rebuild_postgres(
                log_=event_log,
                database_url=database_url,
                keep_old=args.keep_old,
                on_progress=print,
                **sized,
            )
        from projector.rebuild_duckdb import rebuild_duckdb

        return await rebuild_duckdb(
            log_=event_log, path=settings.duckdb_file, on_progress=print, **sized
        )
