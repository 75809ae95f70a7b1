"""``aaltohub health projector``: the projector answers and its Postgres projection is near the head of
the log."""

from __future__ import annotations

import argparse
import asyncio

import psycopg

from aaltohub.runtime import resolve_database_url
from aaltohub.settings import Settings
from aaltohub.stack_file import StackNotRunning
from aaltohub.stream import open_event_log
from aaltohub.subcommands.health import TIMEOUT_S, Unhealthy, metrics
from eventlog import EventLogError


def check_projector(settings: Settings, args: argparse.Namespace) -> str:
    """The projector answers and its Postgres projection is near the head of the log."""
    metrics(settings, "projector", settings.projector_metrics_port)
    if "postgres" not in settings.projection_names:
        return "running (no Postgres projection to measure the lag of)"
    try:
        head = asyncio.run(_head(settings))
        database_url = resolve_database_url(settings, role="projector")
    except (StackNotRunning, EventLogError) as e:
        raise Unhealthy(str(e)) from e
    try:
        with psycopg.connect(database_url, connect_timeout=int(TIMEOUT_S)) as conn:
            row = conn.execute(
                "SELECT seq FROM projection_checkpoints WHERE name = 'postgres'"
            ).fetchone()
    except psycopg.Error as e:
        raise Unhealthy(f"database: {type(e).__name__}") from e
    seq = int(row[0]) if row else 0
    lag = max(0, head - seq)
    if lag > args.max_lag:
        raise Unhealthy(
            f"{lag} events behind the log (at {seq}, head {head}; bound {args.max_lag})"
        )
    return f"{lag} events behind the log (at {seq})"


async def _head(settings: Settings) -> int:
    async with await open_event_log(
        settings, name="aaltohub-health", role="projector", connect_timeout_s=TIMEOUT_S
    ) as event_log:
        return (await event_log.info()).last_seq
