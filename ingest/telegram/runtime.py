"""The parts of one account's run, wired together: one rate limiter shared by every Telegram call,
the entity cache, the live handler, media downloads, backfill and gap-fill queues."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from ingest.seams import EventSink
from ingest.telegram.backfill import Backfiller
from ingest.telegram.chat_jobs import ChatJobs
from ingest.telegram.config import WorkerConfig
from ingest.telegram.entity_cache import EntityCache, EntityStore
from ingest.telegram.failures import FailureRecorder
from ingest.telegram.gapfill import GapFiller
from ingest.telegram.gateway import Gateway
from ingest.telegram.handlers import LiveHandler
from ingest.telegram.known import MessageIndex
from ingest.telegram.logstate import LogState
from ingest.telegram.media import MediaDownloader, MediaStore
from ingest.telegram.ratelimit import RateLimiter, Sleep


@dataclass(frozen=True, slots=True)
class AccountRuntime:
    """What one run of an account's worker works with (rebuilt at every reconnect)."""

    state: LogState
    index: MessageIndex
    limiter: RateLimiter
    cache: EntityCache
    handler: LiveHandler
    media: MediaDownloader | None
    jobs: ChatJobs
    failures: FailureRecorder


def build_runtime(
    *,
    account: str,
    gateway: Gateway,
    config: WorkerConfig,
    state: LogState,
    index: MessageIndex,
    out: EventSink,
    entity_store: EntityStore | None,
    media_store: MediaStore | None,
    sleep: Sleep,
    clock: Callable[[], datetime],
) -> AccountRuntime:
    """Wire one run's parts; every Telegram call of the account goes through one limiter."""
    limiter = RateLimiter(
        account=account,
        emit=out.submit,
        sleep=sleep,
        max_attempts=config.retry_attempts,
        max_flood_wait_s=config.max_flood_wait_s,
        request_timeout_s=config.request_timeout_s,
    )
    cache = EntityCache(
        account=account,
        store=entity_store,
        ttl_s=config.entity_ttl_s,
        fetch_dialogs=partial(limiter.call, "messages.getDialogs", gateway.get_dialogs),
        fetch_entity=lambda pid: limiter.call("getEntity", partial(gateway.get_entity, pid)),
    )
    media = None
    if media_store is not None and config.media_types:
        media = MediaDownloader(
            account=account,
            gateway=gateway,
            limiter=limiter,
            store=media_store,
            sink=out,
            types=config.media_types,
            max_bytes=config.media_max_bytes,
        )
    on_posted = media.offer if media is not None else None
    failures = FailureRecorder(account=account, sink=out, clock=clock)
    backfiller = Backfiller(
        account=account,
        gateway=gateway,
        limiter=limiter,
        resolve=cache.resolve,
        sink=out,
        state=state,
        index=index,
        days=config.backfill_days,
        batch=config.backfill_batch,
        pause_s=config.backfill_pause_s,
        sleep=sleep,
        on_posted=on_posted,
        clock=clock,
    )
    gapfiller = GapFiller(
        account=account,
        gateway=gateway,
        limiter=limiter,
        resolve=cache.resolve,
        sink=out,
        index=index,
        window_s=config.gapfill_window_s,
        max_messages=config.gapfill_max_messages,
        on_posted=on_posted,
        clock=clock,
    )
    handler = LiveHandler(
        account=account,
        sink=out,
        is_watched=lambda c: state.chat(c).watching,
        chat_for_deleted=index.chat_for_deleted,
        on_posted=on_posted,
        self_id=gateway.self_id,
    )
    jobs = ChatJobs(
        state=state, backfiller=backfiller, gapfiller=gapfiller, failures=failures, sleep=sleep
    )
    return AccountRuntime(
        state=state,
        index=index,
        limiter=limiter,
        cache=cache,
        handler=handler,
        media=media,
        jobs=jobs,
        failures=failures,
    )
