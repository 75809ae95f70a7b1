"""Decoding a replay batch and building its Arrow table in a helper process, so a rebuild uses both cores.

During a DuckDB rebuild one Python thread reads the log, decodes every event and builds the Arrow
batches; decoding and building are half of that work. Here they run in a spawned helper process:
the batch goes over as three flat buffers (seqs, payload lengths, payloads joined), the table comes
back as Arrow buffers, and the records that failed come back as (seq, error, event id, chat id) so
the caller turns them into dead letters with their original bytes.
"""

from __future__ import annotations

import concurrent.futures
import gc
import multiprocessing
from array import array
from collections.abc import Sequence
from typing import Final

import pyarrow as pa

from eventlog import RawRecord
from projector.duckdb.rows import event_table
from projector.records import DeadLetter, Decoded
from schemas.codec import Codec
from schemas.errors import SchemaError

Failure = tuple[int, str, str | None, int | None]
Prepared = tuple[pa.Table | None, list[Failure]]
_CONVERSION_ERRORS: Final = (pa.ArrowException, OverflowError, TypeError, ValueError)

_codec: Codec | None = None  # the helper process's codec, set by its initializer


def _init(codec: Codec) -> None:
    global _codec
    # A batch decodes ~10,000 events (several structs each) that live until its table is built:
    # the automatic cyclic collector would scan them again and again, so it runs once a batch.
    gc.disable()
    _codec = codec


def build_table(records: list[Decoded]) -> tuple[pa.Table | None, list[Decoded], list[str]]:
    """The Arrow table of ``records``; on a conversion error, the records (and errors) left out of it."""
    if not records:
        return None, [], []
    try:
        return event_table(records), [], []
    except _CONVERSION_ERRORS:
        pass
    ok: list[Decoded] = []
    bad: list[Decoded] = []
    errors: list[str] = []
    for r in records:
        try:
            event_table([r])
            ok.append(r)
        except _CONVERSION_ERRORS as e:
            bad.append(r)
            errors.append(f"{type(e).__name__}: {e}")
    return (event_table(ok) if ok else None), bad, errors


def _started() -> None:
    """(Runs in the helper.) Nothing: its result says the helper has started and imported."""


def prepare_packed(seqs: array[int], lengths: array[int], blob: bytes) -> Prepared:
    """(Runs in the helper.) Decode the packed records and build their table."""
    assert _codec is not None, "helper process not initialised"
    decode = _codec.decode
    view = memoryview(blob)
    good: list[Decoded] = []
    failures: list[Failure] = []
    pos = 0
    for seq, length in zip(seqs, lengths, strict=True):
        data = view[pos : pos + length]
        pos += length
        try:
            good.append(Decoded(seq, "", b"", decode(data)))
        except SchemaError as e:
            failures.append((seq, f"{type(e).__name__}: {e}", None, None))
    try:
        table, bad, errors = build_table(good)
        failures.extend(
            (r.seq, err, r.event.event_id, r.event.chat_id)
            for r, err in zip(bad, errors, strict=True)
        )
    finally:
        del good
        gc.collect(1)
    return table, failures


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
        seqs = array("q", [r.seq for r in batch])
        lengths = array("I", [len(r.data) for r in batch])
        return self._executor.submit(
            prepare_packed, seqs, lengths, b"".join([r.data for r in batch])
        )

    def close(self) -> None:
        """Stop the helper (pending work is cancelled)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
