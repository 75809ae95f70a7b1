"""Decoding a replay batch and building its Arrow table in a helper process, so a rebuild uses both cores.

During a DuckDB rebuild one Python thread reads the log, decodes every event and builds the Arrow
batches; decoding and building are half of that work. Here they run in a spawned helper process:
the batch goes over as its seqs and payloads, the table comes back as Arrow buffers, and the
records that failed come back as (seq, error, event id, chat id) so the caller turns them into dead
letters with their original bytes.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import itertools
import multiprocessing
import os
import shutil
import tempfile
from array import array
from collections.abc import Sequence
from operator import attrgetter
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.ipc as pa_ipc

from eventlog import RawRecord
from projector.duckdb.rows import event_table
from projector.records import DeadLetter
from schemas.codec import Codec
from schemas.events import AnyEvent

Failure = tuple[int, str, str | None, int | None]
Prepared = tuple[pa.Table | None, list[Failure]]
_CONVERSION_ERRORS: Final = (pa.ArrowException, OverflowError, TypeError, ValueError)

_SEQ: Final = attrgetter("seq")
_DATA: Final = attrgetter("data")

_codec: Codec | None = None  # the helper process's codec, set by its initializer


def _init(codec: Codec) -> None:
    global _codec
    # A batch decodes ~10,000 events (several structs each) that live until its table is built:
    # the automatic cyclic collector would scan them again and again, so it runs once a batch.
    gc.disable()
    _codec = codec


def build_table(
    seqs: Sequence[int], events: Sequence[AnyEvent]
) -> tuple[pa.Table | None, list[tuple[int, str]]]:
    """The Arrow table of ``events`` at ``seqs``; on a conversion error, the (index, error) of each
    event left out of it."""
    if not events:
        return None, []
    try:
        return event_table(seqs, events), []
    except _CONVERSION_ERRORS:
        pass
    ok_seqs: list[int] = []
    ok_events: list[AnyEvent] = []
    bad: list[tuple[int, str]] = []
    for index, (seq, event) in enumerate(zip(seqs, events, strict=True)):
        try:
            event_table([seq], [event])
            ok_seqs.append(seq)
            ok_events.append(event)
        except _CONVERSION_ERRORS as e:
            bad.append((index, f"{type(e).__name__}: {e}"))
    return (event_table(ok_seqs, ok_events) if ok_events else None), bad


def _started() -> None:
    """(Runs in the helper.) Nothing: its result says the helper has started and imported."""


def prepare_batch(batch_file: str, count: int, table_file: str) -> tuple[bool, list[Failure]]:
    """(Runs in the helper.) Decode the ``count`` payloads of ``batch_file`` (written by
    ``PrepareProcess.submit``, removed here) and write their table to ``table_file`` as an Arrow
    IPC stream; returns whether there was a table, and the failures."""
    assert _codec is not None, "helper process not initialised"
    with open(batch_file, "rb") as file:
        blob = file.read()
    os.unlink(batch_file)
    seqs, lengths = array("q"), array("q")
    seqs.frombytes(blob[: 8 * count])
    lengths.frombytes(blob[8 * count : 16 * count])
    ends = list(itertools.accumulate(lengths, initial=16 * count))
    payloads = [blob[start:end] for start, end in itertools.pairwise(ends)]
    del blob
    events, errors = _codec.decode_many(payloads)
    del payloads
    failures: list[Failure] = [
        (seqs[index], f"{type(e).__name__}: {e}", None, None) for index, e in errors.items()
    ]
    good_seqs = [s for i, s in enumerate(seqs) if i not in errors] if errors else seqs
    try:
        table, bad = build_table(good_seqs, events)
        failures.extend(
            (good_seqs[i], error, events[i].event_id, events[i].chat_id) for i, error in bad
        )
    finally:
        del events
        gc.collect(1)
    if table is None:
        return False, failures
    with pa.OSFile(table_file, "wb") as sink, pa_ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return True, failures


def _read_table(path: Path) -> pa.Table:
    """The table of an IPC stream file, mapped rather than copied; the file is removed (the
    mapping lives on with the table's buffers)."""
    try:
        with pa.memory_map(str(path)) as source:
            return pa_ipc.open_stream(source).read_all()
    finally:
        path.unlink()


_HANDOVER_PREFIX: Final = "aaltohub-prepare-"


def _handover_dir() -> Path:
    """A new directory for the batches and tables handed over, named after this process: in memory
    (/dev/shm) where there is one, else the temporary directory (files removed within a second
    rarely reach a disk). Directories left by processes that died are removed first."""
    parent = _handover_parent()
    for path in parent.glob(f"{_HANDOVER_PREFIX}*-*"):
        pid = path.name.removeprefix(_HANDOVER_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{_HANDOVER_PREFIX}{os.getpid()}-", dir=parent))


def handover_bytes(pid: int) -> int:
    """The bytes of batches and tables process ``pid`` and its helper have handed over and not yet
    taken: memory no process's RSS shows (for benchmarks)."""
    total = 0
    for path in _handover_parent().glob(f"{_HANDOVER_PREFIX}{pid}-*/*"):
        with contextlib.suppress(OSError):  # taken meanwhile
            total += path.stat().st_size
    return total


def _handover_parent() -> Path:
    shm = "/dev/shm"
    return Path(shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else tempfile.gettempdir())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


def dead_letters(batch: Sequence[RawRecord], failures: list[Failure]) -> list[DeadLetter]:
    """Dead letters for the helper's failures, carrying the records' subjects and bytes."""
    if not failures:
        return []
    by_seq = {r.seq: r for r in batch}
    return [
        DeadLetter(seq, by_seq[seq].subject, by_seq[seq].data, error, event_id, chat_id)
        for seq, error, event_id, chat_id in sorted(failures)
    ]


class PrepareProcess:
    """One spawned helper process that prepares batches in order of submission.

    The process is spawned at once (not at the first batch) and needs about a second to start
    and import; ``ready`` says when it has, so a caller can prepare the first batches itself
    meanwhile instead of waiting (docs/decisions/044-duckdb-rebuild-load-pipeline.md)."""

    def __init__(self, codec: Codec) -> None:
        # Batches and tables go through files in memory, not the executor's pipe: pickling them
        # through 64 KB pipe writes cost ~1.9 µs an event in this process and ~1 µs in the helper
        # (docs/decisions/044-duckdb-rebuild-load-pipeline.md); a table comes back mapped, not copied.
        self._dir = _handover_dir()
        self._numbers = itertools.count()
        self._executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=(codec,),
        )
        self._started = self._executor.submit(_started)

    @property
    def ready(self) -> bool:
        """Whether the process has started (a batch submitted now is prepared without delay)."""
        return self._started.done()

    def submit(self, batch: Sequence[RawRecord]) -> concurrent.futures.Future[Prepared]:
        """Start preparing ``batch``; the future holds (table, failures)."""
        number = next(self._numbers)
        batch_file, table_file = self._dir / f"{number}.batch", self._dir / f"{number}.arrow"
        prepared: concurrent.futures.Future[Prepared] = concurrent.futures.Future()
        payloads = list(map(_DATA, batch))
        try:
            with open(batch_file, "wb") as file:
                file.write(array("q", map(_SEQ, batch)))
                file.write(array("q", map(len, payloads)))
                file.write(b"".join(payloads))
        except OSError as e:
            prepared.set_exception(e)
            return prepared

        def done(work: concurrent.futures.Future[tuple[bool, list[Failure]]]) -> None:
            if work.cancelled():
                prepared.cancel()
                return
            try:
                written, failures = work.result()
                table = _read_table(table_file) if written else None
            except BaseException as e:  # handed to the caller
                prepared.set_exception(e)
                return
            prepared.set_result((table, failures))

        self._executor.submit(
            prepare_batch, str(batch_file), len(batch), str(table_file)
        ).add_done_callback(done)
        return prepared

    def close(self) -> None:
        """Stop the helper (pending work is cancelled)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self._dir, ignore_errors=True)
