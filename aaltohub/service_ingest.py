"""Wiring of the ingest service from settings, for ``aaltohub up`` and ``aaltohub ingest``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from importlib import metadata

from aaltohub.identity import StackIdentity, verify_database
from aaltohub.metrics_http import serving_metrics
from aaltohub.services import ServiceContext, ServiceSpec
from aaltohub.settings import Settings
from aaltohub.stream import stream_spec
from aaltohub.telegram import TelegramWorkers, build_login_desk
from eventlog import EventLog, EventLogError
from ingest.demo import DemoSource
from ingest.durable.sink import build_sink
from ingest.facts import KnownFacts, chat_fact_ids
from ingest.metrics import IngestMetrics
from ingest.seams import CommandDesk, EventSource
from ingest.service import IngestService, SourcesFactory
from ingest.telegram.threads import ingest_threads

log = logging.getLogger(__name__)

# The Telegram account workers (built by ``run_ingest_service`` when credentials and a database are there).
TelegramSources = Callable[[Settings], Sequence[EventSource]]


def choose_sources(
    settings: Settings,
    *,
    demo: bool = False,
    telegram: TelegramSources | None = None,
    known_facts: KnownFacts | None = None,
) -> tuple[SourcesFactory, bool]:
    """The sources factory and whether it is the demo (no credentials, ``--demo``, or no workers wired)."""
    if not demo and settings.has_telegram_credentials and telegram is not None:
        return (lambda: list(telegram(settings))), False
    if not settings.has_telegram_credentials:
        log.info(
            "ingest: no Telegram credentials (TELEGRAM_API_ID / TELEGRAM_API_HASH): running the DEMO source"
        )
    elif demo:
        log.info("ingest: demo requested: running the DEMO source instead of Telegram")
    else:
        log.warning(
            "ingest: Telegram credentials are set but no database holds the sessions: running the DEMO"
        )
    log.info(
        "ingest: demo traffic: %d groups at %.1f events/s, all marked source=demo",
        settings.demo_groups,
        settings.demo_rate_per_s,
    )

    def demo_sources() -> list[EventSource]:
        return [
            DemoSource(
                groups=settings.demo_groups,
                rate_per_s=settings.demo_rate_per_s,
                seed=settings.demo_seed,
                ledger_path=settings.demo_ledger_path,
                known_facts=known_facts,
            )
        ]

    return demo_sources, True


def build_service(
    settings: Settings,
    *,
    nats_url: str,
    demo: bool = False,
    telegram: TelegramSources | None = None,
    metrics: IngestMetrics | None = None,
    logins: CommandDesk | None = None,
    stack_id: str | None = None,
) -> IngestService:
    """An ``IngestService`` configured from ``settings`` (spool under ``<data>/spool``); it appends
    only to a stream of stack ``stack_id`` (any stack's when None) and spools otherwise."""
    spec = stream_spec(settings)

    async def known_facts(chat_ids: Sequence[int]) -> set[str] | None:
        try:
            async with await EventLog.connect(
                nats_url,
                spec=spec,
                name="aaltohub-ingest-facts",
                connect_timeout_s=5.0,
                ensure=False,  # the stream is the operator's; ingest may not manage it
            ) as reader:
                return await chat_fact_ids(reader, chat_ids)
        except (EventLogError, TimeoutError) as e:
            log.warning("ingest: cannot read the chat facts in the log (%s); re-stating them", e)
            return None

    sources, is_demo = choose_sources(
        settings, demo=demo, telegram=telegram, known_facts=known_facts
    )
    sink = build_sink(
        settings.data_path,
        buffer_size=settings.ingest_buffer_size,
        batch_size=settings.ingest_batch_size,
        linger_s=settings.ingest_linger_ms / 1000,
        max_memory_s=settings.ingest_max_memory_ms / 1000,
        segment_max_bytes=settings.ingest_spool_segment_bytes,
        fsync_every=settings.ingest_spool_fsync_every,
        breaker_failures=settings.ingest_breaker_failures,
        breaker_window_s=settings.ingest_breaker_window_s,
        breaker_open_s=settings.ingest_breaker_open_s,
        on_ack=metrics.acked if metrics is not None else None,
    )

    async def connect_log() -> EventLog:
        event_log = await EventLog.connect(
            nats_url,
            spec=spec,
            name="aaltohub-ingest",
            connect_timeout_s=5.0,
            ensure=False,  # the stream is the operator's (``aaltohub up`` / ``aaltohub log init``)
            ack_timeout_s=settings.ingest_ack_timeout_s,
            append_deadline_s=settings.ingest_append_deadline_s,
        )
        try:
            # A foreign stream (ForeignStream, an EventLogError) is an unreachable log: spool.
            await event_log.verify_stream(stack_id)
        except BaseException:
            await event_log.close()
            raise
        return event_log

    return IngestService(
        sources=sources,
        sink=sink,
        connect_log=connect_log,
        demo=is_demo,
        version=_version(),
        drain_timeout_s=settings.ingest_drain_timeout_s,
        metrics=metrics,
        logins=logins,
    )


def _version() -> str | None:
    try:
        return metadata.version("aaltohub-crawler")
    except metadata.PackageNotFoundError:
        return None


async def run_ingest(context: ServiceContext) -> None:
    """Run ingest until cancelled (``aaltohub up`` cancels it second, after the API)."""
    await run_ingest_service(
        context.settings,
        nats_url=context.nats_url_as("ingest"),
        database_url=context.database_url_as("ingest"),
        demo=context.demo,
        expected=context.identity,
    )


async def run_ingest_service(
    settings: Settings,
    *,
    nats_url: str,
    database_url: str | None,
    demo: bool,
    expected: StackIdentity | None = None,
) -> None:
    """Run ingest with the Telegram account workers when credentials are set, else the demo source;
    ``ForeignStack`` when the workers' database is not the log's stack's."""
    reader: EventLog | None = None
    telegram: TelegramSources | None = None
    factory: TelegramWorkers | None = None  # None: demo, or no Telegram credentials
    # Ingest's blocking calls stay off the loop's default pool, which the API and the projector
    # share under `up` (ingest/telegram/threads.py).
    threads = ingest_threads()
    try:
        if not demo and settings.has_telegram_credentials and database_url is not None:
            # The workers read what the log already knows (watched chats, recent messages) at start.
            reader = await EventLog.connect(
                nats_url, spec=stream_spec(settings), name="aaltohub-ingest-reader", ensure=False
            )
            stack_id = await reader.verify_stream(expected.stack_id if expected else None)
            await asyncio.to_thread(
                verify_database,
                database_url,
                stack_id=stack_id,
                postgres_system_id=expected.postgres_system_id if expected else None,
            )
            factory = TelegramWorkers(
                settings, log=reader, database_url=database_url, executor=threads
            )
            workers = await factory.build_all()
            telegram = lambda _settings: workers  # noqa: E731
        metrics = IngestMetrics()

        async def crawl_new_account(account: str) -> None:
            assert factory is not None
            await service.add_source(await factory.build(account))

        logins = (
            None
            if database_url is None
            else build_login_desk(
                settings,
                database_url=database_url,
                on_logged_in=crawl_new_account if factory is not None else None,
                executor=threads,
            )
        )
        service = build_service(
            settings,
            nats_url=nats_url,
            demo=demo,
            telegram=telegram,
            metrics=metrics,
            logins=logins,
            stack_id=expected.stack_id if expected else None,
        )
        with serving_metrics(
            metrics.registry,
            service="ingest",
            host=settings.metrics_host,
            port=settings.ingest_metrics_port,
        ):
            await service.run()
    finally:
        if reader is not None:
            await reader.close()
        threads.shutdown(wait=False, cancel_futures=True)


def _describe(context: ServiceContext) -> str:
    s = context.settings
    demo = context.demo or not s.has_telegram_credentials
    what = (
        "ingest: demo source (no Telegram credentials)"
        if demo
        else "ingest: Telegram accounts " + ", ".join(s.account_names)
    )
    if s.ingest_metrics_port:
        what += f"; metrics http://{s.metrics_host}:{s.ingest_metrics_port}/metrics"
    return what


INGEST_SERVICE = ServiceSpec(name="ingest", run=run_ingest, stop_order=1, describe=_describe)
