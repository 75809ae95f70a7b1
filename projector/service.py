"""Runs the enabled projections side by side and serves its commands (status, dead-letter retries)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from eventlog import EventLog, RawRecord
from projector.deadletter import DeadLetterStore
from projector.errors import ProjectionError
from projector.metrics import ProjectorMetrics
from projector.records import Projection
from projector.runner import ProjectionRunner, RunnerStatus
from schemas.commands import (
    PROJECTOR_SERVE_SUBJECT,
    Command,
    CommandReply,
    ReportStatus,
    RetryDeadLetters,
)
from schemas.status import ProjectionStatus, ProjectorStatus, RetryOutcome

log = logging.getLogger(__name__)


async def retry_dead_letters(
    projections: Mapping[str, Projection],
    store: DeadLetterStore,
    *,
    ids: Sequence[int] = (),
) -> tuple[int, int]:
    """Re-apply unresolved dead letters of ``projections`` (all, or ``ids``); returns (resolved, still failing)."""
    letters = await store.unresolved(ids=ids, projections=list(projections))
    resolved = failed = 0
    for letter in letters:
        error = await projections[letter.projection].reapply(
            RawRecord(letter.seq, letter.subject, letter.payload)
        )
        await store.mark(letter.id, error=error)
        if error is None:
            resolved += 1
        else:
            failed += 1
            log.warning(
                "dead letter %d (%s seq %d) still fails: %s",
                letter.id,
                letter.projection,
                letter.seq,
                error,
            )
    return resolved, failed


class ProjectorService:
    """Each projection in its own task (a slow sink never holds back another), plus the retry command."""

    def __init__(
        self,
        *,
        log: EventLog,
        projections: Sequence[Projection],
        dead_letters: DeadLetterStore | None,
        batch_size: int = 5000,
        max_batch_wait_s: float = 0.2,
    ) -> None:
        self._log = log
        self._dead_letters = dead_letters
        self.runners = {
            p.name: ProjectionRunner(
                p, log=log, batch_size=batch_size, max_batch_wait_s=max_batch_wait_s
            )
            for p in projections
        }
        self._retry_lock = asyncio.Lock()
        self.serving = asyncio.Event()  # set once its commands are served
        self.metrics = ProjectorMetrics(self.status)
        for runner in self.runners.values():
            runner.on_latency = self.metrics.latency

    def status(self) -> list[RunnerStatus]:
        """Progress of every projection."""
        return [r.status() for r in self.runners.values()]

    async def run(self) -> None:
        """Run until cancelled; then stop serving commands, stop the runners and close the sinks."""
        server = await self._log.serve(PROJECTOR_SERVE_SUBJECT, self._on_command, queue="projector")
        self.serving.set()
        try:
            async with asyncio.TaskGroup() as group:
                for runner in self.runners.values():
                    group.create_task(runner.run(), name=f"projection-{runner.name}")
                group.create_task(self._report(), name="projector-status")
        finally:
            await server.stop()
            for runner in self.runners.values():
                await runner.projection.close()
            if self._dead_letters is not None:
                await self._dead_letters.close()

    async def _report(self, interval_s: float = 30.0) -> None:
        while True:
            await asyncio.sleep(interval_s)  # status cadence
            for st in self.status():
                log.info(
                    "%s: seq %d, lag %d, %.0f events/s, %d retries",
                    st.name,
                    st.seq,
                    st.lag,
                    st.events_per_s,
                    st.retries,
                )

    async def retry(self, ids: Sequence[int] = ()) -> tuple[int, int]:
        """Re-apply dead letters now (serialised with other retries)."""
        if self._dead_letters is None:
            return 0, 0
        async with self._retry_lock:
            projections = {name: r.projection for name, r in self.runners.items()}
            return await retry_dead_letters(projections, self._dead_letters, ids=ids)

    def report(self) -> ProjectorStatus:
        """The typed status answered to ``ReportStatus``."""
        return ProjectorStatus(
            projections=tuple(
                ProjectionStatus(
                    name=st.name,
                    seq=st.seq,
                    lag=st.lag,
                    events_per_s=round(st.events_per_s, 1),
                    retries=st.retries,
                )
                for st in self.status()
            )
        )

    async def _on_command(self, command: Command) -> CommandReply:
        if isinstance(command, ReportStatus):
            return CommandReply(ok=True, message="projector status", projector=self.report())
        if not isinstance(command, RetryDeadLetters):
            return CommandReply(
                ok=False, message=f"the projector does not handle {type(command).__name__}"
            )
        if not command.dead_letter_ids and not command.all_unresolved:
            return CommandReply(ok=False, message="name dead_letter_ids or set all_unresolved")
        try:
            resolved, failed = await self.retry(command.dead_letter_ids)
        except ProjectionError as e:
            return CommandReply(ok=False, message=str(e))
        return CommandReply(
            ok=failed == 0,
            message=f"resolved {resolved}, still failing {failed}",
            retry=RetryOutcome(resolved=resolved, failed=failed),
        )
