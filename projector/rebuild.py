"""Blue/green rebuilds: replay the log from seq 1 into a fresh target while the live one keeps serving,
then swap it in atomically once caught up. What both rebuilds share; each sink's rebuild is a module
of its own (``projector.rebuild_postgres``, ``projector.rebuild_duckdb``), so a rebuild loads only
its own sink's libraries."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from eventlog import EventLog
from projector.records import Projection
from projector.runner import ProjectionRunner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RebuildResult:
    """What a rebuild did: events per second of the replay and the seq it swapped in at."""

    name: str
    seq: int
    events: int
    replay_s: float
    total_s: float
    swapped: str
    search_index_s: float = 0.0  # building the search index after the swap (Postgres)

    @property
    def events_per_s(self) -> float:
        """Replay rate (whole rebuild time, indexes included)."""
        return self.events / self.total_s if self.total_s > 0 else 0.0


async def catch_up(
    projection: Projection, log_: EventLog, *, batch_size: int, close_lag: int
) -> int:
    """Replay until the projection is within ``close_lag`` of the stream head, or until a pass to the
    head ends no closer to it than it started (producers append as fast as the replay applies: chasing
    them could go on for ever; the live projector applies the rest from the swapped-in checkpoint);
    returns its seq."""
    runner = ProjectionRunner(projection, log=log_, batch_size=batch_size, max_batch_wait_s=0.05)
    behind: int | None = None
    while True:
        await runner.run(until_end=True)
        head = (await log_.info()).last_seq
        if head - runner.seq <= close_lag:
            return runner.seq
        if behind is not None and head - runner.seq >= behind:
            log.info(
                "%s replay at seq %d is not gaining on the head (%d); swapping in behind it",
                projection.name,
                runner.seq,
                head,
            )
            return runner.seq
        behind = head - runner.seq
