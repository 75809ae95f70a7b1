"""The DuckDB rebuild: replay the log into a new analytics file beside the live one, then swap it in."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

from eventlog import EventLog
from projector.duckdb.projection import DuckDBProjection, next_file, try_lock, unlock
from projector.rebuild import RebuildResult, catch_up

DUCKDB_READ_BATCH = 10_000  # records per read of a DuckDB rebuild's load
# DuckDB's row group: a rebuild inserts half of one at a time and commits whole ones. Commits that
# ended mid-group (150,000 rows) left partial groups: at 1M events the fold's commit then spent
# ~3 s checkpointing them and the file was 184 MB instead of 119 MB (decision 044).
DUCKDB_ROW_GROUP = 122_880
# DuckDB's memory during a rebuild's fold, once its helper has exited (the load runs with 160 MB):
# at 1M events the fold spilled ~85 MB at 160 MB; peak RSS stays < 600 MB (decision 044).
DUCKDB_FOLD_MEMORY = "240MB"
# A DuckDB rebuild no writer held: the projector publishes it when it next runs.
REPLACED = "replaced; the projector publishes its analytics dataset when it runs"


async def rebuild_duckdb(
    *,
    log_: EventLog,
    path: Path,
    batch_size: int = 10_000,
    on_progress: Callable[[str], None] | None = None,
) -> RebuildResult:
    """Replay into a new file beside ``path``, fold and checkpoint it, then swap it in (directly when no
    writer holds ``path``, else hand it to the live writer as ``<path>.next``).

    The rebuild does not publish the analytics dataset: the projector publishes the new file as a
    new generation at its next publish (at once when it runs, else when it starts); until then
    readers keep the previous generation whole (docs/decisions/035-analytics-as-parquet-files.md)."""
    started = time.perf_counter()
    fresh = path.with_name(f"{path.stem}.rebuild-{time.strftime('%Y%m%d%H%M%S')}{path.suffix}")
    fresh.unlink(missing_ok=True)
    # Large shared transactions, decoding in a helper process; DuckDB's memory is capped lower than
    # the live writer's so writer + helper stay under ~500 MB for a 1M-event log.
    projection = DuckDBProjection(
        path=fresh,
        codec=log_.codec,
        snapshot_interval_s=None,
        fold_interval_s=3600,
        commit_rows=DUCKDB_ROW_GROUP,
        helper_process=True,
        memory_limit="160MB",
    )
    try:
        seq = await projection.open()
        head = (await log_.info()).last_seq
        if head > 0:
            seq = await projection.load(
                log_.read_raw(1, to_seq=head, batch_size=DUCKDB_READ_BATCH),
                insert_rows=DUCKDB_ROW_GROUP // 2,
                fold_memory_limit=DUCKDB_FOLD_MEMORY,
            )
        if (await log_.info()).last_seq > seq:  # appended meanwhile (the runner reopens the file)
            seq = await catch_up(projection, log_, batch_size=batch_size, close_lag=batch_size)
        replay_s = time.perf_counter() - started
        if on_progress:
            on_progress(f"replayed to seq {seq} in {replay_s:.1f}s; checkpointing")
        await projection.finish()
    finally:
        await projection.close()
    swapped = await asyncio.to_thread(_swap_file, fresh, path)
    return RebuildResult("duckdb", seq, seq, replay_s, time.perf_counter() - started, swapped)


def _swap_file(fresh: Path, path: Path) -> str:
    fd = try_lock(path)
    if fd is None:
        os.replace(fresh, next_file(path))  # a live writer holds the file: it swaps between batches
        return "handed to the live writer"
    try:
        path.with_name(path.name + ".wal").unlink(missing_ok=True)
        os.replace(fresh, path)
    finally:
        unlock(fd)
    return REPLACED
