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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Final

import msgspec

from eventlog import EventLog, EventLogError
from ingest.errors import AccountUnusable, ConnectionLost, FloodWaitTooLong, IngestError
from ingest.seams import EventSink
from ingest.telegram.assignment import ChatAssignment
from ingest.telegram.backfill import Backfiller
from ingest.telegram.catchup import CatchUp
from ingest.telegram.discovery import Discovery
from ingest.telegram.entity_cache import EntityCache, EntityStore
from ingest.telegram.gapfill import GapFiller, stagger_forever
from ingest.telegram.gateway import Gateway, PeerRef
from ingest.telegram.handlers import LiveHandler
from ingest.telegram.known import MessageIndex, ObservingSink
from ingest.telegram.logstate import LogState, load_log_state
from ingest.telegram.media import MediaDownloader, MediaStore
from ingest.telegram.ratelimit import RateLimiter, Sleep
from ingest.telegram.supervisor import Link, ReconnectPolicy, describe
from ingest.telegram.updatestate import UpdateStateStore
from schemas import ids
from schemas.commands import Command, CommandReply, RestartCrawler, TriggerCrawl
from schemas.events import (
    Event,
    IngestConnected,
    IngestDisconnected,
    IngestFailed,
    IngestReconnecting,
)
from schemas.status import AccountStatus, CatchUpStatus, FloodWaitStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerConfig:
    """Crawling knobs of one account worker (from ``Settings``' ingest section)."""

    backfill_days: float = 14.0
    backfill_batch: int = 200
    backfill_pause_s: float = 1.5
    discovery_interval_s: float = 300.0
    gapfill_interval_s: float = 1800.0
    gapfill_window_s: float = 3600.0
    gapfill_max_messages: int = 500
    chat_kinds: tuple[str, ...] = ("group", "supergroup", "channel")
    delete_map_days: float = 14.0
    entity_ttl_s: float = 86400.0
    max_flood_wait_s: int = 3600
    retry_attempts: int = 5
    request_timeout_s: float = 180.0
    connection_check_s: float = 5.0
    media_types: tuple[str, ...] = ()
    media_max_bytes: int = 20 * 1024 * 1024
    reconnect: ReconnectPolicy = field(default_factory=ReconnectPolicy)
    catchup_interval_s: float = 900.0  # keeps the stored update state recent while connected
    catchup_pause_s: float = 1.5  # between history pages when a difference is too long


# A failed backfill is retried after 1 min, doubling up to 1 h (visible as IngestFailed events).
BACKFILL_RETRY_BASE_S: Final = 60.0
BACKFILL_RETRY_MAX_S: Final = 3600.0


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


@dataclass(slots=True)
class _Runtime:
    state: LogState
    index: MessageIndex
    limiter: RateLimiter
    backfills: asyncio.Queue[tuple[int, bool]]
    gapfills: asyncio.Queue[int]
    backfiller: Backfiller
    gapfiller: GapFiller
    handler: LiveHandler
    media: MediaDownloader | None
    pending_backfills: set[int] = field(default_factory=set)
    backfill_failures: dict[int, int] = field(default_factory=dict)  # chat → failed attempts
    retries: asyncio.Queue[tuple[int, float]] = field(default_factory=asyncio.Queue)


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
        self._rt: _Runtime | None = None
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
            IngestFailed(
                event_id=ids.occurrence_id("error"),
                account=self.account,
                observed_at=self._clock(),
                source="live",
                error=type(error).__name__,
                detail=f"{reason}; this account stopped crawling",
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
                self._queue_backfill(command.chat_id, force=True)
            else:
                rt.gapfills.put_nowait(command.chat_id)
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
            backfills_pending=len(rt.pending_backfills) if rt else 0,
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
        limiter = RateLimiter(
            account=self.account,
            emit=out.submit,
            sleep=self._sleep,
            max_attempts=cfg.retry_attempts,
            max_flood_wait_s=cfg.max_flood_wait_s,
            request_timeout_s=cfg.request_timeout_s,
        )
        cache = EntityCache(
            account=self.account,
            store=self._entity_store,
            ttl_s=cfg.entity_ttl_s,
            fetch_dialogs=partial(limiter.call, "messages.getDialogs", self._gateway.get_dialogs),
            fetch_entity=lambda pid: limiter.call(
                "getEntity", partial(self._gateway.get_entity, pid)
            ),
        )
        media = None
        if self._media_store is not None and cfg.media_types:
            media = MediaDownloader(
                account=self.account,
                gateway=self._gateway,
                limiter=limiter,
                store=self._media_store,
                sink=out,
                types=cfg.media_types,
                max_bytes=cfg.media_max_bytes,
            )
        on_posted = media.offer if media is not None else None
        resolve = cache.resolve
        handler = LiveHandler(
            account=self.account,
            sink=out,
            is_watched=lambda c: state.chat(c).watching,
            chat_for_deleted=index.chat_for_deleted,
            on_posted=on_posted,
            self_id=self._gateway.self_id,
        )
        rt = _Runtime(
            state=state,
            index=index,
            limiter=limiter,
            backfills=asyncio.Queue(),
            gapfills=asyncio.Queue(),
            backfiller=Backfiller(
                account=self.account,
                gateway=self._gateway,
                limiter=limiter,
                resolve=resolve,
                sink=out,
                state=state,
                index=index,
                days=cfg.backfill_days,
                batch=cfg.backfill_batch,
                pause_s=cfg.backfill_pause_s,
                sleep=self._sleep,
                on_posted=on_posted,
                clock=self._clock,
            ),
            gapfiller=GapFiller(
                account=self.account,
                gateway=self._gateway,
                limiter=limiter,
                resolve=resolve,
                sink=out,
                index=index,
                window_s=cfg.gapfill_window_s,
                max_messages=cfg.gapfill_max_messages,
                on_posted=on_posted,
                clock=self._clock,
            ),
            handler=handler,
            media=media,
        )
        self._rt = rt
        discovery = Discovery(
            account=self.account,
            cache=cache,
            sink=out,
            state=state,
            assignment=self._assignment,
            kinds=cfg.chat_kinds,
            on_discovered=self._queue_backfill,
            on_left=rt.pending_backfills.discard,
            clock=self._clock,
        )
        await limiter.call("connect", self._gateway.connect)
        self._set_connected(out, True)
        try:
            if (
                not self._handler_registered
            ):  # once per client: a restart swaps the handler behind it
                self._gateway.add_update_handler(self._dispatch)
                self._handler_registered = True
            await self._safely("discovery", discovery.run_once, out)
            catch_up = self._catch_up_for(state, index, limiter, resolve, out)
            # Every start and reconnect asks Telegram for what happened while we were away (after
            # discovery, so a newly watched channel gets its pts stored from the first pass on).
            if catch_up is not None:
                await self._safely("catch-up", partial(self._catch_up, catch_up), out)
            for chat_id in state.watched():
                if not rt.backfiller.is_done(chat_id):
                    self._queue_backfill(chat_id)
            self.ready.set()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(
                    self._every(
                        cfg.discovery_interval_s,
                        "discovery",
                        partial(self._discover_and_prune, discovery, index),
                        out,
                    )
                )
                tg.create_task(self._backfill_loop(rt, out))
                tg.create_task(self._retry_loop(rt))
                tg.create_task(self._adhoc_gapfill_loop(rt, out))
                tg.create_task(
                    stagger_forever(
                        chats=state.watched,
                        run_one=partial(self._scheduled_gapfill, rt, out),
                        interval_s=cfg.gapfill_interval_s,
                        sleep=self._sleep,
                        name="gap-fill",
                    )
                )
                tg.create_task(self._watch_connection(out))
                tg.create_task(_flush_counters_forever(handler))
                if catch_up is not None:
                    tg.create_task(
                        self._every(
                            cfg.catchup_interval_s,
                            "catch-up",
                            partial(self._catch_up, catch_up),
                            out,
                        )
                    )
                if media is not None:
                    tg.create_task(media.run())
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

    def _catch_up_for(
        self,
        state: LogState,
        index: MessageIndex,
        limiter: RateLimiter,
        resolve: Callable[[int], Awaitable[PeerRef]],
        out: EventSink,
    ) -> CatchUp | None:
        if self._update_states is None:
            return None  # no database: Telethon's own catch-up within the process only
        return CatchUp(
            account=self.account,
            gateway=self._gateway,
            limiter=limiter,
            store=self._update_states,
            sink=out,
            log_reader=self._log,
            state=state,
            index=index,
            resolve=resolve,
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

    def _queue_backfill(self, chat_id: int, *, force: bool = False) -> None:
        rt = self._rt
        if rt is None or (chat_id in rt.pending_backfills and not force):
            return
        rt.pending_backfills.add(chat_id)
        rt.backfills.put_nowait((chat_id, force))

    async def _backfill_loop(self, rt: _Runtime, out: EventSink) -> None:
        while True:
            chat_id, force = await rt.backfills.get()
            if not rt.state.chat(chat_id).watching:
                rt.pending_backfills.discard(chat_id)
                continue
            try:
                await rt.backfiller.run(chat_id, force=force)
                rt.pending_backfills.discard(chat_id)
            except AccountUnusable:
                raise
            except FloodWaitTooLong as e:
                # Resume this chat's backfill after the wait; live handling goes on meanwhile.
                self._record_failure(out, e, chat_id, "backfill")
                await self._sleep(e.seconds)
                rt.backfills.put_nowait((chat_id, force))
            except IngestError as e:
                rt.pending_backfills.discard(chat_id)
                attempt = rt.backfill_failures.get(chat_id, 0) + 1
                rt.backfill_failures[chat_id] = attempt
                delay_s = min(BACKFILL_RETRY_MAX_S, BACKFILL_RETRY_BASE_S * 2 ** (attempt - 1))
                self._record_failure(
                    out, e, chat_id, "backfill", retry=f"retry {attempt} in {delay_s:.0f}s"
                )
                rt.retries.put_nowait((chat_id, delay_s))
            else:
                rt.backfill_failures.pop(chat_id, None)

    async def _retry_loop(self, rt: _Runtime) -> None:
        # One retry at a time, each after its backoff; the backfill resumes where it stopped.
        while True:
            chat_id, delay_s = await rt.retries.get()
            await self._sleep(delay_s)
            if rt.state.chat(chat_id).watching:
                self._queue_backfill(chat_id)

    async def _adhoc_gapfill_loop(self, rt: _Runtime, out: EventSink) -> None:
        while True:
            chat_id = await rt.gapfills.get()
            await self._safely("gap-fill", partial(rt.gapfiller.run, chat_id), out, chat_id=chat_id)

    async def _scheduled_gapfill(self, rt: _Runtime, out: EventSink, chat_id: int) -> None:
        await self._safely("gap-fill", partial(rt.gapfiller.run, chat_id), out, chat_id=chat_id)

    async def _every(
        self, interval_s: float, what: str, fn: Callable[[], Awaitable[object]], out: EventSink
    ) -> None:
        while True:
            await self._sleep(interval_s)
            await self._safely(what, fn, out)

    async def _safely(
        self,
        what: str,
        fn: Callable[[], Awaitable[object]],
        out: EventSink,
        *,
        chat_id: int | None = None,
    ) -> None:
        try:
            await fn()
        except AccountUnusable:
            raise  # not this task's failure: the account stops
        except IngestError as e:
            log.warning("worker %s: %s failed: %s", self.account, what, e)
            self._record_failure(out, e, chat_id, what)

    def _record_failure(
        self,
        out: EventSink,
        error: IngestError,
        chat_id: int | None,
        what: str,
        *,
        retry: str | None = None,
    ) -> None:
        # The error says what failed and why, secret-free (``describe``): it becomes the group's
        # last_error in crawler_status and a line of /admin/errors.
        reason = f"{what} failed: {describe(error)}"
        detail = f"chat {chat_id}: {reason}" if chat_id is not None else reason
        out.submit(
            IngestFailed(
                event_id=ids.occurrence_id("error"),
                account=self.account,
                observed_at=self._clock(),
                source="live",
                chat_id=chat_id,
                error=reason if retry is None else f"{reason}; {retry}",
                detail=detail,
            )
        )

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


async def _flush_counters_forever(handler: LiveHandler) -> None:
    """Record the live handler's held counter changes when their minute is over (a timer)."""
    while True:
        await asyncio.sleep(COUNTER_FLUSH_S)
        handler.flush_counters()
