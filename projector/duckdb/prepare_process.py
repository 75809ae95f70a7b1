"""Decoding a replay batch and building its Arrow table in a helper process, so a rebuild uses both cores.

During a DuckDB rebuild one Python thread reads the log, decodes every event and builds the Arrow
batches; decoding and building are half of that work. Here they run in a spawned helper process:
the batch goes over as its seqs and payloads, the table comes back as Arrow buffers, and the
records that failed come back as (seq, error, event id, chat id) so the caller turns them into dead
letters with their original bytes.
"""

from __future__ import annotations

import concurrent.futures
import gc
import multiprocessing
from array import array
from collections.abc import Sequence
from operator import attrgetter
from typing import Final

import pyarrow as pa

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


def prepare_batch(seqs: array[int], payloads: list[bytes]) -> Prepared:
    """(Runs in the helper.) Decode the payloads at ``seqs`` and build their table."""
    assert _codec is not None, "helper process not initialised"
    events, errors = _codec.decode_many(payloads)
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
        # The payloads go as they are: the helper decodes a list of bytes without a Python call per
        # payload (one joined buffer cut into views cost ~1.4 µs an event there).
        return self._executor.submit(
            prepare_batch, array("q", map(_SEQ, batch)), list(map(_DATA, batch))
        )

    def close(self) -> None:
        """Stop the helper (pending work is cancelled)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
