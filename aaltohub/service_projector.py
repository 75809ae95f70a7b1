"""Wiring of the projector for ``aaltohub up`` and ``aaltohub project``: settings → projections → service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from aaltohub.identity import StackIdentity, verify_stack
from aaltohub.metrics_http import serving_metrics
from aaltohub.services import ServiceContext, ServiceSpec
from aaltohub.settings import Settings
from aaltohub.stream import stream_spec
from eventlog import EventLog
from projector.broadcast import BroadcastProjection
from projector.deadletter import DeadLetterStore
from projector.duckdb.projection import DuckDBProjection
from projector.postgres.projection import PostgresProjection
from projector.postgres.search_index import keep_search_index
from projector.records import Projection
from projector.service import ProjectorService
from schemas.codec import Codec

log = logging.getLogger(__name__)

KNOWN_PROJECTIONS = ("postgres", "duckdb", "broadcast")


def broadcast_configured(settings: Settings) -> bool:
    """The broadcast projection can run: Supabase's URL and service-role key are set."""
    return bool(settings.supabase_url) and settings.supabase_service_key is not None


def build_projections(
    settings: Settings,
    *,
    names: Sequence[str],
    database_url: str,
    duckdb_path: Path,
    codec: Codec,
    dead_letters: DeadLetterStore | None,
) -> list[Projection]:
    """The named projections; broadcast is left out (with a log line) when SUPABASE_URL is unset."""
    out: list[Projection] = []
    for name in names:
        if name == "postgres":
            out.append(PostgresProjection(database_url=database_url, codec=codec))
        elif name == "duckdb":
            out.append(
                DuckDBProjection(
                    path=duckdb_path,
                    codec=codec,
                    dead_letters=dead_letters,
                    snapshot_interval_s=settings.duckdb_snapshot_interval_s,
                    fold_interval_s=settings.duckdb_fold_interval_s,
                )
            )
        elif name == "broadcast":
            if not broadcast_configured(settings):
                log.info(
                    "broadcast projection disabled: SUPABASE_URL / SUPABASE_SERVICE_ROLE_KEY not set"
                )
                continue
            assert settings.supabase_url is not None and settings.supabase_service_key is not None
            out.append(
                BroadcastProjection(
                    supabase_url=settings.supabase_url,
                    api_key=settings.supabase_service_key.get_secret_value(),
                    database_url=database_url,
                    codec=codec,
                    dead_letters=dead_letters,
                )
            )
        else:
            raise ValueError(f"unknown projection {name!r} (known: {', '.join(KNOWN_PROJECTIONS)})")
    return out


async def run_projections(
    settings: Settings,
    *,
    nats_url: str,
    database_url: str,
    duckdb_path: Path,
    names: Sequence[str] | None = None,
    expected: StackIdentity | None = None,
) -> None:
    """Run the enabled projections until cancelled; ``ForeignStack`` first when the log or the
    database is not this stack's (``expected``, else the stream's stack id)."""
    async with await EventLog.connect(
        nats_url, spec=stream_spec(settings), name="aaltohub-projector", ensure=False
    ) as event_log:
        # The projector is the database's one writer: it claims a database no stack recorded yet.
        await verify_stack(event_log, database_url, expected=expected, claim=True)
        store = DeadLetterStore(database_url=database_url)
        projections = build_projections(
            settings,
            names=names or settings.projection_names,
            database_url=database_url,
            duckdb_path=duckdb_path,
            codec=event_log.codec,
            dead_letters=store,
        )
        service = ProjectorService(
            log=event_log,
            projections=projections,
            dead_letters=store,
            batch_size=settings.projector_batch_size,
            max_batch_wait_s=settings.projector_max_batch_wait_s,
        )
        log.info("projector: running %s", ", ".join(service.runners) or "nothing")
        with serving_metrics(
            service.metrics.registry,
            service="projector",
            host=settings.metrics_host,
            port=settings.projector_metrics_port,
        ):
            await _run_service(service, database_url)


async def _run_service(service: ProjectorService, database_url: str) -> None:
    async with asyncio.TaskGroup() as group:
        if "postgres" in service.runners:
            # A rebuild that died between its swap and its search index leaves search at 503.
            group.create_task(keep_search_index(database_url), name="search-index")
        group.create_task(service.run(), name="projector")


async def _run(ctx: ServiceContext) -> None:
    await run_projections(
        ctx.settings,
        nats_url=ctx.nats_url_as("projector"),
        database_url=ctx.database_url_as("projector"),
        duckdb_path=ctx.duckdb_path,
        expected=ctx.identity,
    )


def _describe(ctx: ServiceContext) -> str:
    s = ctx.settings
    metrics = (
        f"; metrics http://{s.metrics_host}:{s.projector_metrics_port}/metrics"
        if s.projector_metrics_port
        else ""
    )
    names = [n for n in s.projection_names if n != "broadcast" or broadcast_configured(s)]
    return f"projector: {', '.join(names)} (analytics in {ctx.duckdb_path}){metrics}"


SERVICE = ServiceSpec(name="projector", run=_run, stop_order=2, describe=_describe)
