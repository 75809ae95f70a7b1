"""The per-chat work queues of one connected account: backfills (one at a time, retried with
backoff), requested gap-fills and scheduled gap-fills."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Final

from ingest.errors import AccountUnusable, FloodWaitTooLong, IngestError
from ingest.telegram.backfill import Backfiller
from ingest.telegram.failures import FailureRecorder
from ingest.telegram.gapfill import GapFiller
from ingest.telegram.logstate import LogState
from ingest.telegram.ratelimit import Sleep

# A failed backfill is retried after 1 min, doubling up to 1 h (visible as IngestFailed events).
BACKFILL_RETRY_BASE_S: Final = 60.0
BACKFILL_RETRY_MAX_S: Final = 3600.0


class ChatJobs:
    """Backfill and gap-fill queues of one account's run; the loops run in the worker's group."""

    def __init__(
        self,
        *,
        state: LogState,
        backfiller: Backfiller,
        gapfiller: GapFiller,
        failures: FailureRecorder,
        sleep: Sleep,
    ) -> None:
        self._state = state
        self._backfiller = backfiller
        self._gapfiller = gapfiller
        self._failures = failures
        self._sleep = sleep
        self._backfills: asyncio.Queue[tuple[int, bool]] = asyncio.Queue()
        self._gapfills: asyncio.Queue[int] = asyncio.Queue()
        self._retries: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
        self._backfill_failures: dict[int, int] = {}  # chat → failed attempts in a row
        self.pending_backfills: set[int] = set()

    def backfill_done(self, chat_id: int) -> bool:
        """True when the chat's backfill reached its start date (by the log)."""
        return self._backfiller.is_done(chat_id)

    def queue_backfill(self, chat_id: int, *, force: bool = False) -> None:
        """Queue the chat's backfill unless it is already queued (``force`` queues it again)."""
        if chat_id in self.pending_backfills and not force:
            return
        self.pending_backfills.add(chat_id)
        self._backfills.put_nowait((chat_id, force))

    def queue_gapfill(self, chat_id: int) -> None:
        """Queue a gap-fill of the chat now (a crawl command)."""
        self._gapfills.put_nowait(chat_id)

    def forget(self, chat_id: int) -> None:
        """The chat is no longer watched: drop its pending backfill."""
        self.pending_backfills.discard(chat_id)

    async def run_backfills(self) -> None:
        """Backfill queued chats one at a time, forever."""
        while True:
            chat_id, force = await self._backfills.get()
            if not self._state.chat(chat_id).watching:
                self.pending_backfills.discard(chat_id)
                continue
            try:
                await self._backfiller.run(chat_id, force=force)
                self.pending_backfills.discard(chat_id)
            except AccountUnusable:
                raise
            except FloodWaitTooLong as e:
                # Resume this chat's backfill after the wait; live handling goes on meanwhile.
                self._failures.record(e, "backfill", chat_id=chat_id)
                await self._sleep(e.seconds)
                self._backfills.put_nowait((chat_id, force))
            except IngestError as e:
                self.pending_backfills.discard(chat_id)
                attempt = self._backfill_failures.get(chat_id, 0) + 1
                self._backfill_failures[chat_id] = attempt
                delay_s = min(BACKFILL_RETRY_MAX_S, BACKFILL_RETRY_BASE_S * 2 ** (attempt - 1))
                retry = f"retry {attempt} in {delay_s:.0f}s"
                self._failures.record(e, "backfill", chat_id=chat_id, retry=retry)
                self._retries.put_nowait((chat_id, delay_s))
            else:
                self._backfill_failures.pop(chat_id, None)

    async def run_retries(self) -> None:
        """Queue failed backfills again, one at a time, each after its backoff (they resume where
        they stopped)."""
        while True:
            chat_id, delay_s = await self._retries.get()
            await self._sleep(delay_s)
            if self._state.chat(chat_id).watching:
                self.queue_backfill(chat_id)

    async def run_requested_gapfills(self) -> None:
        """Gap-fill chats as they are requested, forever."""
        while True:
            await self.gapfill(await self._gapfills.get())

    async def gapfill(self, chat_id: int) -> None:
        """One gap-fill of the chat; a failure is recorded as the chat's error."""
        run = partial(self._gapfiller.run, chat_id)
        await self._failures.safely("gap-fill", run, chat_id=chat_id)
