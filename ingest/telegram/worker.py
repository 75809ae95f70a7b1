"""``TelegramAccountWorker``: one Telegram account as an ``EventSource``.

It reads what the log knows (chats, backfill progress, recent messages), connects, registers the
live handler, discovers chats, and then runs in one ``TaskGroup``: discovery every few minutes, a
backfill queue (one at a time), staggered gap-fill, media downloads and a connection watch that
catches up after reconnects. Every Telegram call goes through the ``Gateway`` and ``RateLimiter``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Final

import msgspec

from eventlog import EventLog, EventLogError
from ingest.errors import AccountUnusable, ConnectionLost, IngestError
from ingest.failure_events import failure_event
from ingest.seams import EventSink
from ingest.telegram.assignment import ChatAssignment
from ingest.telegram.catchup import CatchUp
from ingest.telegram.config import WorkerConfig
from ingest.telegram.discovery import Discovery
from ingest.telegram.entity_cache import EntityStore
from ingest.telegram.gapfill import stagger_forever
from ingest.telegram.gateway import Gateway
from ingest.telegram.handlers import LiveHandler
from ingest.telegram.known import MessageIndex, ObservingSink
from ingest.telegram.logstate import load_log_state
from ingest.telegram.media import MediaStore
from ingest.telegram.ratelimit import Sleep
from ingest.telegram.runtime import AccountRuntime, build_runtime
from ingest.telegram.supervisor import Link, describe
from ingest.telegram.updatestate import UpdateStateStore
from schemas import ids
from schemas.commands import Command, CommandReply, RestartCrawler, TriggerCrawl
from schemas.events import (
    Event,
    IngestConnected,
    IngestDisconnected,
    IngestReconnecting,
)
from schemas.status import AccountStatus, CatchUpStatus, FloodWaitStatus

__all__ = ["TelegramAccountWorker", "WorkerConfig"]

log = logging.getLogger(__name__)


class _RestartRequested(Exception):
    """Raised inside the task group to restart the worker (RestartCrawler)."""


def _cancelled_meanwhile() -> None:
    """Re-raise a cancellation that a task group turned into its children's errors: a worker
    being stopped must not take a failure seen on the way out for a reason to reconnect."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _most_significant(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The failure that decides what the supervisor does, when several tasks failed at once."""
    leaves: list[BaseException] = []

    def flatten(g: BaseExceptionGroup[BaseException]) -> None:
        for e in g.exceptions:
            flatten(e) if isinstance(e, BaseExceptionGroup) else leaves.append(e)

    flatten(group)
    for kind in (AccountUnusable, _RestartRequested, ConnectionLost):
        for e in leaves:
            if isinstance(e, kind):
                return e
    return leaves[0]


class TelegramAccountWorker:
    """Crawls the chats assigned to one Telegram account; implements ``EventSource``."""

    def __init__(
        self,
        *,
        account: str,
        gateway: Gateway,
        log_reader: EventLog,
        config: WorkerConfig,
        assignment: ChatAssignment,
        entity_store: EntityStore | None = None,
        update_states: UpdateStateStore | None = None,
        media_store: MediaStore | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = account  # the account its events carry; commands for it name it too
        self.account = account
        self._gateway = gateway
        self._log = log_reader
        self._config = config
        self._assignment = assignment
        self._entity_store = entity_store
        self._update_states = update_states
        self._catch_up_status = CatchUpStatus()
        self._media_store = media_store
        self._sleep = sleep
        self._clock = clock
        self._rt: AccountRuntime | None = None
        self._restart = asyncio.Event()
        self._connected = False
        self._link = Link()
        self._handler_registered = False
        self.ready = asyncio.Event()

    def __repr__(self) -> str:
        return f"TelegramAccountWorker(account={self.account!r})"

    # --- EventSource ----------------------------------------------------------------------------
    async def run(self, sink: EventSink) -> None:
        """Crawl until cancelled, reconnecting forever (see ``ingest.telegram.supervisor``);
        ``RestartCrawler`` restarts at once; an unusable session stops this account."""
        try:
            while True:
                try:
                    await self._run_once(sink)
                    return
                except _RestartRequested:
                    log.info("worker %s: restarting", self.account)
                    self._restart.clear()
                    self._link.restarted()
                    continue
                except AccountUnusable as e:
                    self._stop_unusable(sink, e)
                    return
                except (IngestError, EventLogError, OSError, TimeoutError) as e:
                    error: BaseException = e
                except (
                    Exception
                ) as e:  # a crashed worker is recorded and restarted like a lost link
                    log.exception("worker %s: crashed", self.account)
                    error = e
                finally:
                    self.ready.clear()
                _cancelled_meanwhile()
                await self._back_off(sink, error)
        finally:
            if self._link.state != "auth_failed":
                self._link.state = "stopped"

    async def _back_off(self, sink: EventSink, error: BaseException) -> None:
        reason = describe(error)
        attempt, delay_s = self._link.down(reason, datetime.now(UTC), self._config.reconnect)
        log.warning(
            "worker %s: %s; reconnect attempt %d in %.1fs", self.account, reason, attempt, delay_s
        )
        sink.submit(
            IngestReconnecting(
                event_id=ids.occurrence_id("reconnecting"),
                account=self.account,
                observed_at=self._clock(),
                source="live",
                attempt=attempt,
                delay_s=round(delay_s, 3),
                error=reason,
            )
        )
        await self._sleep(delay_s)  # the supervisor's backoff (injected: tests do not wait)

    def _stop_unusable(self, sink: EventSink, error: AccountUnusable) -> None:
        reason = describe(error)
        log.error("worker %s: stopped: %s", self.account, reason)
        self._link.unusable(reason, datetime.now(UTC))
        sink.submit(
            failure_event(
                account=self.account,
                kind="session",
                error=type(error).__name__,
                detail=f"{reason}; this account stopped crawling",
                observed_at=self._clock(),
            )
        )

    async def handle(self, command: Command) -> CommandReply:
        """Crawl a chat now, or restart."""
        rt = self._rt
        if isinstance(command, RestartCrawler):
            self._restart.set()
            return CommandReply(ok=True, message=f"{self.account}: restart requested")
        if isinstance(command, TriggerCrawl):
            if rt is None:
                return CommandReply(ok=False, message=f"{self.account}: not running")
            if not rt.state.chat(command.chat_id).watching:
                return CommandReply(
                    ok=False, message=f"{self.account} does not crawl chat {command.chat_id}"
                )
            if command.mode == "backfill":
                rt.jobs.queue_backfill(command.chat_id, force=True)
            else:
                rt.jobs.queue_gapfill(command.chat_id)
            return CommandReply(ok=True, message=f"{command.mode} of {command.chat_id} queued")
        return CommandReply(ok=False, message=f"{type(command).__name__} is not an ingest command")

    def status(self) -> AccountStatus:
        """Connection, watched groups, backlog and the limiter's flood waits."""
        rt = self._rt
        lim = rt.limiter if rt else None
        flood = None
        if lim is not None and lim.last_flood_at is not None and lim.last_flood_wait_s is not None:
            flood = FloodWaitStatus(
                seconds=lim.last_flood_wait_s,
                method=lim.last_flood_method or "",
                at=lim.last_flood_at,
            )
        link = self._link
        return AccountStatus(
            account=self.account,
            state=link.state,
            connected=link.connected,
            connected_since=link.connected_since,
            reconnect_attempts=link.attempts,
            reconnects=link.reconnects,
            next_reconnect_at=link.next_attempt_at,
            last_error=link.last_error,
            last_error_at=link.last_error_at,
            groups_watched=len(rt.state.watched()) if rt else 0,
            backfills_pending=len(rt.jobs.pending_backfills) if rt else 0,
            media_pending=rt.media.pending if rt and rt.media else 0,
            live_failures=rt.handler.failed if rt else 0,
            flood_waits=lim.flood_waits if lim else 0,
            last_flood_wait=flood,
            catch_up=self._catch_up_status if self._update_states is not None else None,
        )

    # --- wiring -----------------------------------------------------------------------------------
    async def _run_once(self, sink: EventSink) -> None:
        cfg = self._config
        index = MessageIndex(account=self.account)
        out = ObservingSink(sink, index)
        keep_since, map_since = self._retention()
        state = await load_log_state(
            self._log, account=self.account, index=index, keep_since=keep_since, map_since=map_since
        )
        self._assignment.preload(state.owners)
        rt = build_runtime(
            account=self.account,
            gateway=self._gateway,
            config=cfg,
            state=state,
            index=index,
            out=out,
            entity_store=self._entity_store,
            media_store=self._media_store,
            sleep=self._sleep,
            clock=self._clock,
        )
        self._rt = rt
        jobs, failures = rt.jobs, rt.failures
        discovery = Discovery(
            account=self.account,
            cache=rt.cache,
            sink=out,
            state=state,
            assignment=self._assignment,
            kinds=cfg.chat_kinds,
            on_discovered=jobs.queue_backfill,
            on_left=jobs.forget,
            clock=self._clock,
        )
        await rt.limiter.call("connect", self._gateway.connect)
        self._set_connected(out, True)
        try:
            if (
                not self._handler_registered
            ):  # once per client: a restart swaps the handler behind it
                self._gateway.add_update_handler(self._dispatch)
                self._handler_registered = True
            await failures.safely("discovery", discovery.run_once)
            catch_up = self._catch_up_for(rt, out)
            # Every start and reconnect asks Telegram for what happened while we were away (after
            # discovery, so a newly watched channel gets its pts stored from the first pass on).
            if catch_up is not None:
                await failures.safely("catch-up", partial(self._catch_up, catch_up))
            for chat_id in state.watched():
                if not jobs.backfill_done(chat_id):
                    jobs.queue_backfill(chat_id)
            self.ready.set()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(
                    self._every(
                        cfg.discovery_interval_s,
                        "discovery",
                        partial(self._discover_and_prune, discovery, index),
                        rt,
                    )
                )
                tg.create_task(jobs.run_backfills())
                tg.create_task(jobs.run_retries())
                tg.create_task(jobs.run_requested_gapfills())
                tg.create_task(
                    stagger_forever(
                        chats=state.watched,
                        run_one=jobs.gapfill,
                        interval_s=cfg.gapfill_interval_s,
                        sleep=self._sleep,
                        name="gap-fill",
                    )
                )
                tg.create_task(self._watch_connection(out))
                tg.create_task(_flush_counters_forever(rt.handler))
                tg.create_task(
                    _catch_up_after_pause(
                        rt.handler,
                        out,
                        None
                        if catch_up is None
                        else partial(
                            failures.safely, "catch-up", partial(self._catch_up, catch_up)
                        ),
                        account=self.name,
                    )
                )
                if catch_up is not None:
                    tg.create_task(
                        self._every(
                            cfg.catchup_interval_s,
                            "catch-up",
                            partial(self._catch_up, catch_up),
                            rt,
                        )
                    )
                if rt.media is not None:
                    tg.create_task(rt.media.run())
                # The body waits (rather than leaving the group to wait in __aexit__) so that a
                # failing task cancels it and the group takes that cancellation back: on 3.11 a
                # failure seen while __aexit__ waits leaves the task marked as being cancelled.
                await self._restart.wait()
                raise _RestartRequested
        except BaseExceptionGroup as group:  # the supervisor acts on one cause
            raise _most_significant(group) from group
        finally:
            with contextlib.suppress(IngestError, OSError, TimeoutError):
                await self._gateway.disconnect()
            if self._connected:
                self._set_connected(out, False, reason="worker stopped")

    def _catch_up_for(self, rt: AccountRuntime, out: EventSink) -> CatchUp | None:
        if self._update_states is None:
            return None  # no database: Telethon's own catch-up within the process only
        return CatchUp(
            account=self.account,
            gateway=self._gateway,
            limiter=rt.limiter,
            store=self._update_states,
            sink=out,
            log_reader=self._log,
            state=rt.state,
            index=rt.index,
            resolve=rt.cache.resolve,
            clock=self._clock,
            sleep=self._sleep,
            pause_s=self._config.catchup_pause_s,
        )

    async def _catch_up(self, catch_up: CatchUp) -> None:
        started = datetime.now(UTC)
        st = self._catch_up_status
        self._catch_up_status = msgspec.structs.replace(
            st, state="running", last_started_at=started, passes=st.passes + 1
        )
        try:
            result = await catch_up.run()
        except IngestError as e:
            self._catch_up_status = msgspec.structs.replace(
                self._catch_up_status,
                state="failed",
                last_finished_at=datetime.now(UTC),
                last_error=describe(e),
            )
            raise
        self._catch_up_status = msgspec.structs.replace(
            self._catch_up_status,
            state="idle",
            last_finished_at=datetime.now(UTC),
            last_new=result.new,
            last_edited=result.edited,
            last_deleted=result.deleted,
            last_error=None,
        )

    def _retention(self) -> tuple[datetime, datetime]:
        # Gap-fill compares only its window (kept twice over); deletes without a chat id need the
        # basic-group message map for ``delete_map_days``. Bounded memory for many busy groups.
        now = self._clock()
        return (
            now - timedelta(seconds=2 * self._config.gapfill_window_s),
            now - timedelta(days=self._config.delete_map_days),
        )

    async def _discover_and_prune(self, discovery: Discovery, index: MessageIndex) -> None:
        await discovery.run_once()
        keep_since, map_since = self._retention()
        index.prune(details_before=keep_since, map_before=map_since)

    def _dispatch(self, update: object) -> None:
        rt = self._rt
        if rt is not None:
            rt.handler(update)

    async def _every(
        self,
        interval_s: float,
        what: str,
        fn: Callable[[], Awaitable[object]],
        rt: AccountRuntime,
    ) -> None:
        while True:
            await self._sleep(interval_s)
            await rt.failures.safely(what, fn)

    def _set_connected(self, out: EventSink, connected: bool, *, reason: str | None = None) -> None:
        self._connected = connected
        now = datetime.now(UTC)
        if connected:
            self._link.up(now)
        event: Event
        if connected:
            event = IngestConnected(
                event_id=ids.occurrence_id("connected"),
                account=self.account,
                observed_at=now,
                source="live",
            )
        else:
            event = IngestDisconnected(
                event_id=ids.occurrence_id("disconnected"),
                account=self.account,
                observed_at=now,
                source="live",
                reason=reason,
            )
        out.submit(event)

    async def _watch_connection(self, out: EventSink) -> None:
        # Telethon's is_connected() stays true while it retries by itself; false means it gave up.
        while True:
            await self._sleep(self._config.connection_check_s)
            if not self._gateway.is_connected():
                self._set_connected(out, False, reason="connection lost")
                raise ConnectionLost("Telegram connection lost and Telethon stopped retrying")


# Held counter changes are recorded at most this late after their minute is over.
COUNTER_FLUSH_S: Final = 15.0
PAUSE_POLL_S: Final = 1.0  # how soon a catch-up follows the end of an intake pause


async def _catch_up_after_pause(
    handler: LiveHandler,
    out: EventSink,
    catch_up: Callable[[], Awaitable[None]] | None,
    *,
    account: str,
) -> None:
    """Once intake resumes after live updates were left while it was paused (a full disk), catch
    up from the stored update state at once rather than at the next interval."""
    while True:
        await asyncio.sleep(PAUSE_POLL_S)
        if not handler.missed or out.intake_paused:
            continue
        missed, handler.missed = handler.missed, 0
        if catch_up is None:
            log.warning(
                "%s: %d live updates left while intake was paused; no update state to catch up"
                " from: gap-fill will find their messages",
                account,
                missed,
            )
            continue
        log.info("%s: intake resumed; catching up %d live updates left meanwhile", account, missed)
        await catch_up()


async def _flush_counters_forever(handler: LiveHandler) -> None:
    """Record the live handler's held counter changes when their minute is over (a timer)."""
    while True:
        await asyncio.sleep(COUNTER_FLUSH_S)
        handler.flush_counters()
