"""The ingest service: runs event sources into the durable sink, serves commands, shuts down in phases.

Sources report their own lifecycle by submitting events (``IngestConnected``, ``IngestDisconnected``,
``FloodWaited``) and their state through ``status()``; the service adds the counters it sees in the
events passing through its sink and answers ``ReportStatus`` with a ``CrawlerStatus``. Commands are
served on the subjects ``schemas.commands`` derives for each source's account and for all; login
commands (adding an account from the console) only when a login desk is configured (Telegram
credentials, ``MASTER_KEY`` and a database), so an ingest that cannot log in does not answer them.

Shutdown on cancel: stop intake (cancel the sources), cancel background
tasks, append ``IngestStopped``, stop serving commands, drain the buffer to the log or the spool,
close the log. Nothing submitted is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from eventlog import CommandServer, EventLog, EventLogError
from ingest.durable.sink import DurableSink
from ingest.failure_events import failure_event
from ingest.metrics import IngestMetrics
from ingest.seams import CommandDesk, EventSink, EventSource
from schemas import ids
from schemas.commands import (
    LOGIN_SERVE_SUBJECT,
    Command,
    CommandReply,
    ReportStatus,
    RestartCrawler,
    TriggerCrawl,
    ingest_serve_subject,
)
from schemas.events import (
    Event,
    FloodWaited,
    IngestFailed,
    IngestStarted,
    IngestStopped,
    MessageEdited,
    MessagePosted,
    Source,
)
from schemas.status import AccountStatus, CrawlerStatus, FloodWaitStatus

log = logging.getLogger(__name__)

SourcesFactory = Callable[[], Sequence[EventSource]]
LogConnector = Callable[[], Awaitable[EventLog]]


@dataclass
class Observed:
    """What the service saw one account submit: the part of its status that events tell."""

    messages_received: int = 0
    flood_waits: int = 0
    last_flood_wait: FloodWaitStatus | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None

    def onto(self, status: AccountStatus) -> AccountStatus:
        """``status`` (the source's own report) with the counters seen in its events."""
        return msgspec.structs.replace(
            status,
            messages_received=self.messages_received,
            flood_waits=max(status.flood_waits, self.flood_waits),
            last_flood_wait=status.last_flood_wait or self.last_flood_wait,
            last_error=status.last_error or self.last_error,
            last_error_at=status.last_error_at or self.last_error_at,
        )


class ObservingSink:
    """An ``EventSink`` that forwards to the durable sink and keeps per-account observations."""

    def __init__(
        self,
        sink: DurableSink,
        accounts: dict[str, Observed],
        observe: Callable[[Event], None] | None = None,
    ) -> None:
        self._sink = sink
        self._accounts = accounts
        self._also = observe

    def submit(self, event: Event) -> None:
        """Forward one event (non-blocking, never lost)."""
        self._observe(event)
        self._sink.submit(event)

    async def submit_many(self, events: Sequence[Event]) -> None:
        """Forward events and wait until they are acked or spooled."""
        for event in events:
            self._observe(event)
        await self._sink.submit_many(events)

    @property
    def intake_paused(self) -> bool:
        """The durable sink's pause (disk full)."""
        return self._sink.intake_paused

    def _observe(self, event: Event) -> None:
        if self._also is not None:
            self._also(event)
        seen = self._accounts.get(event.account)
        if seen is None:
            seen = self._accounts[event.account] = Observed()
        if isinstance(event, MessagePosted | MessageEdited):
            seen.messages_received += 1
        elif isinstance(event, FloodWaited):
            seen.flood_waits += 1
            seen.last_flood_wait = FloodWaitStatus(
                seconds=event.seconds, method=event.method, at=event.observed_at
            )
        elif isinstance(event, IngestFailed):
            seen.last_error = event.error
            seen.last_error_at = event.observed_at


class IngestService:
    """Runs ``sources`` into ``sink`` until cancelled; serves ingest commands once the log is reachable."""

    def __init__(
        self,
        *,
        sources: SourcesFactory,
        sink: DurableSink,
        connect_log: LogConnector,
        demo: bool,
        version: str | None = None,
        drain_timeout_s: float = 10.0,
        source_stop_timeout_s: float = 10.0,
        command_timeout_s: float = 30.0,
        metrics: IngestMetrics | None = None,
        logins: CommandDesk | None = None,
    ) -> None:
        self._sources_factory = sources
        self._logins = logins  # serves the console's Telegram logins (None: not configured)
        self._sink = sink
        self._connect_log = connect_log
        self._demo = demo
        self._source_kind: Source = "demo" if demo else "live"
        self._version = version
        self._drain_timeout_s = drain_timeout_s
        self._source_stop_timeout_s = source_stop_timeout_s
        self._command_timeout_s = command_timeout_s
        self._accounts: dict[str, Observed] = {}
        self._observed = ObservingSink(
            sink, self._accounts, metrics.observe if metrics is not None else None
        )

        self._sources: list[EventSource] = []
        self._source_tasks: dict[str, asyncio.Task[None]] = {}
        self._log: EventLog | None = None
        self._servers: list[CommandServer] = []
        self._started_at: float | None = None
        self._started_wall: datetime | None = None
        self._running = False
        self.serving = asyncio.Event()  # set once commands are served (the log is reachable)
        if metrics is not None:
            metrics.track(self.report)

    @property
    def sink(self) -> EventSink:
        """The sink the sources write to (also for other producers in the same process)."""
        return self._observed

    async def run(self) -> None:
        """Run until cancelled, then shut down in phases (the cancellation is re-raised)."""
        self._sources = list(self._sources_factory())
        for source in self._sources:
            self._accounts.setdefault(source.name, Observed())
        await self._sink.start()
        self._started_at = time.monotonic()
        self._started_wall = datetime.now(UTC)
        self._running = True
        log.info(
            "ingest: running %s (%s)",
            ", ".join(s.name for s in self._sources) or "no sources",
            "demo traffic" if self._demo else "Telegram",
        )
        for source in self._sources:
            self._start_source(source)
        connector = asyncio.create_task(self._connect_forever(), name="ingest-log-connector")
        try:
            await asyncio.Event().wait()  # until cancelled: the work happens in the tasks
        finally:
            await self._shutdown(connector)

    async def add_source(self, source: EventSource) -> None:
        """Start a source while running (an account logged in from the console); a running source
        of the same account is stopped first, so a new session replaces the old one."""
        if not self._running:
            raise RuntimeError("the ingest service is not running")
        old = self._source_tasks.pop(source.name, None)
        if old is not None:
            old.cancel()
            await asyncio.wait([old], timeout=self._source_stop_timeout_s)
        self._sources = [s for s in self._sources if s.name != source.name] + [source]
        self._accounts.setdefault(source.name, Observed())
        self._start_source(source)
        log.info("ingest: %s added", source.name)
        if self._log is not None and self.serving.is_set() and old is None:
            await self._serve_account(self._log, source.name)

    def _start_source(self, source: EventSource) -> None:
        self._observed.submit(
            IngestStarted(
                event_id=ids.occurrence_id("started"),
                account=source.name,
                observed_at=datetime.now(UTC),
                source=self._source_kind,
                version=self._version,
                demo=self._demo,
            )
        )
        self._source_tasks[source.name] = asyncio.create_task(
            self._run_source(source), name=f"source-{source.name}"
        )

    async def _shutdown(self, connector: asyncio.Task[None]) -> None:
        try:
            log.info("ingest: stopping (1/5 stop intake)")
            source_tasks = list(self._source_tasks.values())
            for task in source_tasks:
                task.cancel()
            if source_tasks:
                _done, pending = await asyncio.wait(
                    source_tasks, timeout=self._source_stop_timeout_s
                )
                for task in pending:
                    log.warning(
                        "ingest: %s did not stop within %.1fs",
                        task.get_name(),
                        self._source_stop_timeout_s,
                    )
            log.info("ingest: stopping (2/5 cancel background tasks)")
            connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connector
            self._running = False
            for source in self._sources:
                self._observed.submit(
                    IngestStopped(
                        event_id=ids.occurrence_id("stopped"),
                        account=source.name,
                        observed_at=datetime.now(UTC),
                        source=self._source_kind,
                        reason="shutdown",
                    )
                )
            log.info("ingest: stopping (3/5 stop serving commands)")
            for server in self._servers:
                await server.stop()
            if self._logins is not None:
                await self._logins.close()
            log.info("ingest: stopping (4/5 drain the buffer to the log or the spool)")
            await self._sink.close(drain_timeout_s=self._drain_timeout_s)
            status = self._sink.status()
            log.info(
                "ingest: appended %d, spooled %d, %d in the spool",
                status.appended,
                status.spooled,
                status.spool_records,
            )
        finally:  # a step that failed or was cancelled must not leave the connection open
            log.info("ingest: stopping (5/5 disconnect)")
            if self._log is not None:
                await self._log.close()
            log.info("ingest: stopped")

    # --- sources ----------------------------------------------------------------------------------

    async def _run_source(self, source: EventSource) -> None:
        backoff_s = 1.0
        while True:
            try:
                await source.run(self._observed)
                log.info("ingest: source %s finished", source.name)
                return
            except (
                Exception
            ) as e:  # a crashed source is recorded and restarted, never silently lost
                log.exception(
                    "ingest: source %s failed; restarting in %.0fs", source.name, backoff_s
                )
                self._observed.submit(
                    failure_event(
                        account=source.name,
                        kind="source",
                        error=f"source crashed: {type(e).__name__}",
                        detail=str(e),
                        observed_at=datetime.now(UTC),
                        source=self._source_kind,
                    )
                )
            await asyncio.sleep(backoff_s)  # capped exponential back-off before a restart
            backoff_s = min(backoff_s * 2, 60.0)

    # --- the log and commands ---------------------------------------------------------------------

    async def _connect_forever(self) -> None:
        delay_s = 0.5
        while self._log is None:
            try:
                self._log = await self._connect_log()
            except EventLogError as e:
                log.warning("ingest: log unreachable (%s); spooling, retrying in %.1fs", e, delay_s)
                await asyncio.sleep(delay_s)  # capped back-off between connection attempts
                delay_s = min(delay_s * 2, 10.0)
        self._sink.attach(self._log)
        await self._serve_commands(self._log)

    async def _serve_commands(self, event_log: EventLog) -> None:
        targets: list[str | None] = [None, *(s.name for s in self._sources)]
        for account in targets:
            await self._serve_account(event_log, account)
        if self._logins is not None:
            server = await asyncio.wait_for(
                event_log.serve(LOGIN_SERVE_SUBJECT, self._logins.handle), timeout=5
            )
            self._servers.append(server)
        self.serving.set()
        log.info(
            "ingest: serving commands for %s and all accounts",
            ", ".join(s.name for s in self._sources) or "no accounts",
        )

    async def _serve_account(self, event_log: EventLog, account: str | None) -> None:
        server = await asyncio.wait_for(
            event_log.serve(ingest_serve_subject(account), self._handler_for(account)),
            timeout=5,
        )
        self._servers.append(server)

    def _handler_for(self, account: str | None) -> Callable[[Command], Awaitable[CommandReply]]:
        async def handle(command: Command) -> CommandReply:
            return await self.handle(command, account=account)

        return handle

    async def handle(self, command: Command, *, account: str | None) -> CommandReply:
        """Answer ``ReportStatus``; dispatch crawl/restart to the account's source (or all of them)."""
        if isinstance(command, ReportStatus):
            return CommandReply(ok=True, message="ingest status", crawler=self.report(account))
        if not isinstance(command, TriggerCrawl | RestartCrawler):
            return CommandReply(
                ok=False, message=f"ingest does not handle {type(command).__name__}"
            )
        targets = [s for s in self._sources if account is None or s.name == account]
        if not targets:
            return CommandReply(ok=False, message=f"no source for account {account!r}")
        replies = await asyncio.gather(*(self._ask(s, command) for s in targets))
        if isinstance(command, TriggerCrawl) and account is None:
            accepted = [r for r in replies if r.ok]
            return accepted[0] if accepted else replies[0]
        return CommandReply(
            ok=all(r.ok for r in replies),
            message="; ".join(r.message for r in replies if r.message),
        )

    async def _ask(self, source: EventSource, command: Command) -> CommandReply:
        try:
            return await asyncio.wait_for(source.handle(command), timeout=self._command_timeout_s)
        except TimeoutError:
            return CommandReply(
                ok=False, message=f"{source.name}: no answer within {self._command_timeout_s}s"
            )
        except (
            Exception
        ) as e:  # a failing handler becomes a negative reply, not a dead command server
            log.exception("ingest: %s failed to handle %s", source.name, type(command).__name__)
            return CommandReply(ok=False, message=f"{source.name}: {type(e).__name__}")

    def report(self, account: str | None = None) -> CrawlerStatus:
        """The typed status answered to ``ReportStatus`` (one account, or all of them)."""
        accounts = tuple(
            self._accounts.get(source.name, Observed()).onto(source.status())
            for source in self._sources
            if account is None or source.name == account
        )
        return CrawlerStatus(
            running=self._running,
            demo=self._demo,
            version=self._version,
            started_at=self._started_wall,
            uptime_s=round(time.monotonic() - self._started_at, 1) if self._started_at else 0.0,
            accounts=accounts,
            sink=self._sink.status(),
        )
