"""The DuckDB analytics projection: one writer process, Arrow batches, checkpoint in the same transaction.

``events`` is appended per batch from an Arrow table (never ``executemany``); ``messages`` is folded
from ``events`` for the keys touched since ``messages_seq``: at once when caught up, otherwise at most
every ``fold_interval_s`` (so a long replay appends fast and folds in a few large passes). Both
sequences live in ``projection_checkpoint`` and move in the transaction that wrote the rows.
A rebuild hands over a finished file as ``<file>.next``; the live writer swaps it in between batches.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import logging
import os
import pickle
import time
import uuid
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

import pyarrow as pa

import duckdb
from eventlog import RawRecord
from projector.deadletter import DeadLetterStore
from projector.duckdb.dataset import DatasetPublisher, Published, dataset_dir
from projector.duckdb.prepare_process import Prepared, PrepareProcess, build_table, dead_letters
from projector.errors import CheckpointMoved, ProjectionUnavailable
from projector.loading import short_gil_slices
from projector.records import DeadLetter, Decoded, dead_letter_of, decode_batch
from schemas.codec import Codec
from schemas.duckdb.tables import (
    COUNTERS_HISTORY_VIEW,
    DDL,
    DELETE_DIRTY,
    DIRTY_KEYS,
    INSERT_FOLDED,
    INSERT_FOLDED_ALL,
    MESSAGE_COLUMNS_SINCE_SCOPE,
    MESSAGES_HAVE_SCOPE,
    RANK_OLD_EVENTS,
)

log = logging.getLogger(__name__)

_ALL: Final = 2**62
T = TypeVar("T")


async def _finish_in_thread(
    fn: Callable[[], T], executor: concurrent.futures.ThreadPoolExecutor
) -> T:
    """Run blocking DuckDB work on ``executor``; if cancelled meanwhile, let it finish before
    re-raising (the connection must not be used or closed while a call is still running on it)."""
    future = asyncio.get_running_loop().run_in_executor(executor, fn)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


def lock_file(path: Path) -> Path:
    """The lock a live writer holds while it has ``path`` open (flock: exclusive even within a process)."""
    return path.with_name(path.name + ".lock")


def try_lock(path: Path) -> int | None:
    """Take the writer lock of ``path``; returns the fd holding it, or None if another writer has it."""
    fd = os.open(lock_file(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def unlock(fd: int) -> None:
    """Release a lock taken by ``try_lock``."""
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def next_file(path: Path) -> Path:
    """Where a finished rebuild waits for the live writer to swap it in."""
    return path.with_name(path.name + ".next")


class DuckDBProjection:
    """Projects the log into the DuckDB file at ``path``."""

    subjects: Sequence[str] | None = None

    def __init__(
        self,
        *,
        path: Path,
        codec: Codec,
        dead_letters: DeadLetterStore | None = None,
        name: str = "duckdb",
        snapshot_interval_s: float | None = 2.0,
        fold_interval_s: float = 30.0,
        memory_limit: str = "256MB",
        threads: int = 2,
        commit_rows: int = 0,
        helper_process: bool = False,
    ) -> None:
        self.name = name
        self.path = path
        self._codec = codec
        self._dead_letters = dead_letters
        self._snapshot_interval_s = snapshot_interval_s
        self._fold_interval_s = fold_interval_s
        # Publishing writes what is new since the last publish (projector/duckdb/dataset.py), so it
        # can run every few seconds however large the file is.
        self._publisher = DatasetPublisher(dataset_dir(path))
        self._file_id = ""
        self._republish = False
        # Batches share one transaction until it holds ``commit_rows`` events (0: commit each batch).
        # A rebuild sets it above DuckDB's row group (122,880 rows): a transaction that large writes
        # its row groups straight to the file instead of to the WAL and again at checkpoint.
        self._commit_rows = commit_rows
        # A rebuild decodes and builds its Arrow batches in a helper process (prepare_process.py).
        self._use_helper = helper_process
        self._helper: PrepareProcess | None = None
        self._in_transaction = False
        self._uncommitted_rows = 0
        self._committed_seq = 0
        # DuckDB work runs on the projection's own thread, not the event loop's default pool, which
        # ingest and the API share under `aaltohub up` (docs/decisions/025-bounded-api-resources.md).
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        # Insertion order is meaningless here and keeping it makes large folds hold everything in memory.
        self._config: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": memory_limit,
            "threads": str(threads),
            "preserve_insertion_order": "false",
        }
        self._con: duckdb.DuckDBPyConnection | None = None
        self._seq = 0
        self._messages_seq = 0
        self._last_fold = time.monotonic()
        self._last_snapshot = 0.0
        self._snapshot_seq = -1
        self._lock = asyncio.Lock()
        self._snapshot_task: asyncio.Task[None] | None = None
        self._lock_fd: int | None = None
        self._unreported = 0
        self._last_report = 0.0

    @property
    def seq(self) -> int:
        """Last applied seq."""
        return self._seq

    @property
    def helper_ready(self) -> bool:
        """Whether the helper process (if any) has started; until then batches are prepared here."""
        return self._helper is not None and self._helper.ready

    async def open(self) -> int:
        """Open (or create) the file, swap in a finished rebuild if one waits; returns the checkpoint."""
        await self.close()
        async with self._lock:
            await _finish_in_thread(self._open, self._executor)
        if self._use_helper:
            self._helper = PrepareProcess(self._codec)
        if self._snapshot_interval_s is not None:
            self._snapshot_task = asyncio.create_task(self._snapshot_loop())
        return self._seq

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._lock_fd is None:
            self._lock_fd = try_lock(self.path)
            if self._lock_fd is None:
                raise ProjectionUnavailable(f"duckdb: another writer holds {self.path}")
        pending = next_file(self.path)
        if pending.exists():
            log.info("%s: swapping in the rebuilt file %s", self.name, pending)
            self.path.with_name(self.path.name + ".wal").unlink(missing_ok=True)
            os.replace(pending, self.path)
        try:
            con = duckdb.connect(str(self.path), config=self._config)
        except duckdb.IOException as e:
            raise ProjectionUnavailable(f"duckdb: cannot open {self.path}: {e}") from e
        scope = con.execute(MESSAGES_HAVE_SCOPE).fetchone()
        for ddl in DDL:
            con.execute(ddl)
        if scope is not None and scope[1] > 0 and scope[0] < MESSAGE_COLUMNS_SINCE_SCOPE:
            # A file from before message keys had an id scope, counters or date ranks (the DDL
            # added the columns): rank the stored snapshots as the upcaster does, rebuild every
            # message at the next fold and publish the whole file again (new columns).
            log.info("%s: messages gained columns; the next fold rebuilds them", self.name)
            con.execute(RANK_OLD_EVENTS)
            con.execute("UPDATE projection_checkpoint SET messages_seq = 0")
            self._republish = True
        con.execute(COUNTERS_HISTORY_VIEW)
        source = con.execute("SELECT file_id FROM dataset_source").fetchone()
        if source is None:
            source = (uuid.uuid4().hex,)
            con.execute("INSERT INTO dataset_source VALUES (?)", [source[0]])
        self._file_id = str(source[0])
        con.execute(
            "INSERT INTO projection_checkpoint VALUES (?, 0, 0) ON CONFLICT DO NOTHING", [self.name]
        )
        row = con.execute(
            "SELECT seq, messages_seq FROM projection_checkpoint WHERE name = ?", [self.name]
        ).fetchone()
        assert row is not None
        self._con = con
        self._seq, self._messages_seq = int(row[0]), int(row[1])
        self._committed_seq = self._seq
        self._in_transaction, self._uncommitted_rows = False, 0
        self._snapshot_seq = -1

    async def close(self) -> None:
        """Stop publishing snapshots and close the file."""
        task, self._snapshot_task = self._snapshot_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._stop_helper()
        async with self._lock:
            con, self._con = self._con, None
            if con is not None:
                await _finish_in_thread(con.close, self._executor)  # an open transaction rolls back
                self._executor.shutdown(wait=False)
                self._thread = None
                self._seq, self._in_transaction, self._uncommitted_rows = (
                    self._committed_seq,
                    False,
                    0,
                )
            if self._lock_fd is not None:
                unlock(self._lock_fd)
                self._lock_fd = None

    @property
    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._thread is None:
            self._thread = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="duckdb-projector"
            )
        return self._thread

    async def _stop_helper(self) -> None:
        helper, self._helper = self._helper, None
        if helper is not None:
            await asyncio.to_thread(helper.close)

    def prepare(self, batch: Sequence[RawRecord]) -> object:
        """Decode the batch and build its Arrow table (or start that in the helper process)."""
        first = batch[0].seq if batch else 0
        # Until the helper has started (~1 s at a rebuild's start), this process prepares the
        # batches itself rather than wait for it with the batches read meanwhile.
        if self._helper is not None and self._helper.ready:
            return _Pending(first, self._helper.submit(batch))
        good, bad = decode_batch(self._codec, batch)
        table, failed = _build(good)
        return _Prepared(first, table, bad + failed)

    async def _from_helper(self, pending: _Pending, batch: Sequence[RawRecord]) -> _Prepared | None:
        try:
            table, failures = await asyncio.wrap_future(pending.future)
        except (
            concurrent.futures.BrokenExecutor,
            pickle.PicklingError,
            AttributeError,
            TypeError,
            OSError,
        ) as e:
            log.warning(
                "%s: helper process failed (%s: %s); preparing in this process",
                self.name,
                type(e).__name__,
                e,
            )
            self._use_helper = False
            await self._stop_helper()
            return None
        return _Prepared(pending.first_seq, table, dead_letters(batch, failures))

    async def apply(
        self, batch: Sequence[RawRecord], *, caught_up: bool = False, prepared: object = None
    ) -> None:
        """Append the batch's events (and fold messages when due) with the checkpoint, in one transaction."""
        if not batch:
            return
        table = await self._table_of(batch, prepared)
        fold = caught_up or time.monotonic() - self._last_fold >= self._fold_interval_s
        if caught_up:
            # The bulk is read: free the helper's memory before the fold needs it; the tail (if any)
            # is prepared in this process.
            await self._stop_helper()
        last = batch[-1].seq
        async with self._lock:
            await _finish_in_thread(lambda: self._write(table, last, fold), self._executor)
        await self._report(last, len(batch), now=caught_up)

    async def _table_of(self, batch: Sequence[RawRecord], prepared: object) -> pa.Table | None:
        """The Arrow table of the batch's records after the checkpoint (from the helper when it
        prepared them); records it cannot hold are dead-lettered."""
        if next_file(self.path).exists():
            raise CheckpointMoved(
                self.name, expected=self._seq, seq=-1
            )  # the runner reopens → swap
        if isinstance(prepared, _Pending):
            prepared = await self._from_helper(prepared, batch)
        if not isinstance(prepared, _Prepared) or prepared.first_seq <= self._seq:
            good, bad = decode_batch(self._codec, batch)
            good = [r for r in good if r.seq > self._seq]
            bad = [b for b in bad if b.seq > self._seq]
            table, failed = _build(good)
            bad.extend(failed)
        else:
            table, bad = prepared.table, prepared.dead
        if bad and self._dead_letters is not None:
            await self._dead_letters.record(
                self.name, bad
            )  # idempotent per seq: safe before our commit
        for b in bad:
            log.warning("dead letter %s seq %d: %s", self.name, b.seq, b.error)
        return table

    async def _report(self, last: int, applied: int, *, now: bool) -> None:
        self._unreported += applied
        if self._dead_letters is not None and (now or time.monotonic() - self._last_report >= 1.0):
            # Informational mirror of the checkpoint (the truth is inside the DuckDB file).
            try:
                await self._dead_letters.report_progress(self.name, last, self._unreported)
                self._unreported, self._last_report = 0, time.monotonic()
            except ProjectionUnavailable as e:
                log.info("%s: progress not mirrored to Postgres: %s", self.name, e)

    async def load(
        self,
        batches: AsyncIterable[Sequence[RawRecord]],
        *,
        ahead: int = 3,
        insert_rows: int = 50_000,
        fold_memory_limit: str | None = None,
    ) -> int:
        """Apply a replay's batches in order, then fold and commit; returns the seq reached.

        Up to ``ahead`` batches are read and prepared while earlier ones are written (the runner
        reads the next batch only once the previous write is done, so reading the log, the helper
        and DuckDB took turns). Prepared rows are inserted exactly ``insert_rows`` at a time (the
        rest at the end): each insert waits for the GIL, which the thread reading the log holds
        most of the time, and small inserts made a rebuild spend a third of its time waiting.
        ``fold_memory_limit`` replaces DuckDB's memory limit for the fold, once the helper's
        memory is free (docs/decisions/044-duckdb-rebuild-load-pipeline.md)."""
        queue: asyncio.Queue[tuple[Sequence[RawRecord], object] | None] = asyncio.Queue(ahead)

        async def read() -> None:
            async for batch in batches:
                if batch:
                    await queue.put((batch, self.prepare(batch)))
            await queue.put(None)

        pending: list[pa.Table] = []  # prepared rows not inserted yet, in seq order
        pending_rows = applied = 0
        last = self._seq  # the last record read

        async def write(
            table: pa.Table | None, seq: int, fold: bool, memory_limit: str | None = None
        ) -> None:
            nonlocal applied

            def run() -> None:
                if memory_limit is not None:
                    self._require().execute(f"SET memory_limit = '{memory_limit}'")
                self._write(table, seq, fold)

            async with self._lock:
                await _finish_in_thread(run, self._executor)
            await self._report(seq, applied, now=fold)
            applied = 0

        started = time.perf_counter()
        # At 1M events the load took 20.3 s with Python's 5 ms slices, 16.4 s with short ones.
        with short_gil_slices():
            reader = asyncio.create_task(read())
            try:
                while (item := await queue.get()) is not None:
                    table = await self._table_of(*item)
                    last, applied = item[0][-1].seq, applied + len(item[0])
                    if table is not None and table.num_rows:
                        pending.append(table)
                        pending_rows += table.num_rows
                    while pending_rows >= insert_rows:
                        # Exactly insert_rows rows (checkpoint: the last one's seq), so that commits
                        # fall on DuckDB's row groups when commit_rows is a multiple of them.
                        rows = pa.concat_tables(pending)
                        head, rest = rows.slice(0, insert_rows), rows.slice(insert_rows)
                        pending, pending_rows = ([rest] if rest.num_rows else []), rest.num_rows
                        await write(head, head.column("seq")[-1].as_py(), False)
                await reader
            finally:
                if not reader.done():
                    reader.cancel()
                    await asyncio.gather(reader, return_exceptions=True)
            await self._stop_helper()  # free its memory before the fold
        loaded = time.perf_counter()
        await write(pa.concat_tables(pending) if pending else None, last, True, fold_memory_limit)
        log.info(
            "%s: loaded to seq %d in %.1fs, folded messages in %.1fs",
            self.name,
            self._seq,
            loaded - started,
            time.perf_counter() - loaded,
        )
        return self._seq

    def _require(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise ProjectionUnavailable("duckdb: not open")
        return self._con

    def _write(self, table: pa.Table | None, last_seq: int, fold: bool) -> None:
        con = self._require()
        if not self._in_transaction:
            con.execute("BEGIN TRANSACTION")
            self._in_transaction = True
        try:
            if table is not None and table.num_rows:
                con.register("batch_events", table)
                try:
                    con.execute("INSERT INTO events BY NAME SELECT * FROM batch_events")
                finally:
                    con.unregister("batch_events")
                self._uncommitted_rows += table.num_rows
            messages_seq = self._messages_seq
            if fold:
                self._fold(con, self._messages_seq, _ALL)
                messages_seq = last_seq
            con.execute(
                "UPDATE projection_checkpoint SET seq = ?, messages_seq = ? WHERE name = ?",
                [last_seq, messages_seq, self.name],
            )
            if fold or self._uncommitted_rows >= self._commit_rows:
                con.execute("COMMIT")
                self._in_transaction, self._uncommitted_rows = False, 0
                self._committed_seq = last_seq
        except BaseException:
            self._in_transaction, self._uncommitted_rows = False, 0
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            self._seq = self._committed_seq  # batches of the open transaction are gone with it
            raise
        self._seq, self._messages_seq = last_seq, messages_seq
        if fold:
            self._last_fold = time.monotonic()

    @staticmethod
    def _fold(con: duckdb.DuckDBPyConnection, from_seq: int, to_seq: int) -> None:
        if from_seq == 0 and to_seq == _ALL:  # the first fold: every key, no key tracking needed
            con.execute("DELETE FROM messages")
            con.execute(INSERT_FOLDED_ALL)
            return
        con.execute(DIRTY_KEYS, {"from_seq": from_seq, "to_seq": to_seq})
        con.execute(DELETE_DIRTY)
        con.execute(INSERT_FOLDED)

    async def reapply(self, record: RawRecord) -> str | None:
        """Apply one dead-lettered record again and refold its message; None on success, else the error."""
        good, bad = decode_batch(self._codec, [record])
        if bad:
            return bad[0].error
        table, failed = _build(good)
        if failed or table is None:
            return failed[0].error if failed else "nothing to apply"

        def run() -> None:
            if self._in_transaction:
                self._write(None, self._seq, True)  # commit the open bulk transaction first
            con = self._require()
            con.execute("BEGIN TRANSACTION")
            try:
                con.register("batch_events", table)
                con.execute("INSERT INTO events BY NAME SELECT * FROM batch_events")
                con.unregister("batch_events")
                if record.seq <= self._messages_seq:
                    self._fold(con, record.seq - 1, record.seq)
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise

        async with self._lock:
            try:
                await _finish_in_thread(run, self._executor)
            except duckdb.Error as e:
                return f"{type(e).__name__}: {e}"
        # The record's seq is behind the published one: publish everything again.
        self._snapshot_seq, self._republish = -1, True
        return None

    async def finish(self) -> None:
        """Fold what is pending and CHECKPOINT, so the file is complete on its own (no WAL)."""

        def run() -> None:
            if self._messages_seq < self._seq:
                self._write(None, self._seq, True)
            self._require().execute("CHECKPOINT")

        async with self._lock:
            await _finish_in_thread(run, self._executor)

    async def publish_now(self) -> Published | None:
        """Fold what is pending and publish what is new to the dataset (no write runs meanwhile);
        None when nothing changed since the last publish."""
        async with self._lock:
            return await _finish_in_thread(self._publish, self._executor)

    def _publish(self) -> Published | None:
        con = self._require()
        if self._messages_seq < self._seq:
            self._write(None, self._seq, True)
        if self._snapshot_seq == self._seq and not self._republish:
            return None
        published = self._publisher.publish(con, self._seq, self._file_id, full=self._republish)
        self._snapshot_seq = self._seq
        self._republish = False
        self._last_snapshot = time.monotonic()
        return published

    async def _snapshot_loop(self) -> None:
        assert self._snapshot_interval_s is not None
        while True:
            await asyncio.sleep(min(1.0, self._snapshot_interval_s))  # publishing cadence
            due = time.monotonic() - self._last_snapshot >= self._snapshot_interval_s
            if due and self._snapshot_seq != self._seq and self._con is not None:
                try:
                    await self.publish_now()
                except (duckdb.Error, OSError, ProjectionUnavailable) as e:
                    log.warning("%s: snapshot not published: %s", self.name, e)


@dataclass(frozen=True)
class _Pending:
    first_seq: int
    future: concurrent.futures.Future[Prepared]


@dataclass(frozen=True)
class _Prepared:
    first_seq: int
    table: pa.Table | None
    dead: list[DeadLetter]


def _build(records: list[Decoded]) -> tuple[pa.Table | None, list[DeadLetter]]:
    """The Arrow table of ``records``; records it cannot hold become dead letters."""
    table, bad = build_table([r.seq for r in records], [r.event for r in records])
    return table, [dead_letter_of(records[index], error) for index, error in bad]
