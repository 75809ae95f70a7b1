"""Per-group failures as events: what failed and why, secret-free, with the chat id.

An ``IngestFailed`` with a chat id becomes that group's ``last_error`` and ``error`` status in
``crawler_status`` (until a gap-fill or catch-up pass recovers it) and a line of ``/admin/errors``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from ingest.errors import AccountUnusable, IngestError
from ingest.failure_events import failure_event
from ingest.seams import EventSink
from ingest.telegram.supervisor import describe
from schemas.events import Source

log = logging.getLogger(__name__)


class FailureRecorder:
    """Records one account's failures in the log."""

    def __init__(self, *, account: str, sink: EventSink, clock: Callable[[], datetime]) -> None:
        self._account = account
        self._sink = sink
        self._clock = clock

    def record(
        self,
        error: IngestError,
        kind: str,
        *,
        chat_id: int | None = None,
        what: str | None = None,
        retry: str | None = None,
        source: Source = "live",
    ) -> None:
        """Submit ``IngestFailed`` of ``kind`` (e.g. "backfill"; ``what`` names it more closely in
        the text), optionally naming the retry."""
        reason = f"{what or kind} failed: {describe(error)}"
        log.warning("%s: %s%s", self._account, f"chat {chat_id}: " if chat_id else "", reason)
        self._sink.submit(
            failure_event(
                account=self._account,
                kind=kind,
                error=reason if retry is None else f"{reason}; {retry}",
                detail=f"chat {chat_id}: {reason}" if chat_id is not None else reason,
                observed_at=self._clock(),
                source=source,
                chat_id=chat_id,
            )
        )

    async def safely(
        self, kind: str, fn: Callable[[], Awaitable[object]], *, chat_id: int | None = None
    ) -> None:
        """Run ``fn``; an ingest error is recorded, not raised (an unusable session still is)."""
        try:
            await fn()
        except AccountUnusable:
            raise  # not this task's failure: the account stops
        except IngestError as e:
            self.record(e, kind, chat_id=chat_id)
