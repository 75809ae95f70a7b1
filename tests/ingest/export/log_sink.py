"""A small real ``EventSink`` for tests and the bench: appends each batch to the log, acked."""

from __future__ import annotations

from collections.abc import Sequence

from eventlog import EventLog
from schemas.events import Event


class LogSink:
    """``EventSink`` over ``EventLog.append_many``; counts what the log reported as duplicates."""

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self.appended = 0
        self.duplicates = 0

    def submit(self, event: Event) -> None:
        raise NotImplementedError("the importer uses submit_many only")

    intake_paused = False  # never paused (a test may set it)

    async def submit_many(self, events: Sequence[Event]) -> None:
        results = await self._log.append_many(events)
        self.appended += len(results)
        self.duplicates += sum(1 for r in results if r.duplicate)
