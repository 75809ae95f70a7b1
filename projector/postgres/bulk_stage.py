"""A rebuild's bulk staging in helper processes: decode the log's records, build their rows and COPY them
into unlogged stage tables, one set per partition of the chats and one helper per partition.

The caller reads the log and hands each helper the records of its partition (routed by subject,
``SubjectPartitions``); the helpers decode, build rows and feed COPY side by side, and the
per-partition stages let the fold run on one connection per partition
(docs/decisions/042-parallel-bulk-rebuild.md). A chat's first record picks the partition with the
fewest records so far and keeps it, so partitions stay even when one chat dominates. Messages,
reactions and channel deletes go to their chat's partition; deletes without a chat or outside
channels (message ids numbered per account) go to partition 0, which applies them once every
partition's messages are in. Records about chats rather than messages, and ingest's own, go to
partition 0's helper: what the fold applies from them is put back in seq order by the caller.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import multiprocessing
import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import psycopg
from psycopg import sql

from eventlog import RawRecord
from projector.postgres.rows import (
    CONVERSION_ERRORS,
    DELETE_STAGE_COLUMNS,
    MESSAGE_STAGE_COLUMNS,
    REACTION_STAGE_COLUMNS,
    GroupOp,
    build_rows,
)
from projector.records import DeadLetter
from schemas.codec import Codec
from schemas.errors import SchemaError
from schemas.events import Event
from schemas.ids import is_channel_id
from schemas.subjects import chat_of_message_subject

# The stage tables of a partition: (name prefix, columns); a partition's are ``<prefix>_<k>``.
STAGES: Final = (
    ("firsts", MESSAGE_STAGE_COLUMNS),  # each message's first snapshot
    ("later", MESSAGE_STAGE_COLUMNS),  # its later ones
    ("deletes", DELETE_STAGE_COLUMNS),
    ("reactions", REACTION_STAGE_COLUMNS),
)
_STAGE_TIMEOUT_S: Final = 600.0  # one batch staged (decode, rows, COPY of ~20,000 events)

# What went wrong in the helper, for the caller to translate: "data" rolls the bulk load back (the
# replay then bisects the bad event into a dead letter), "unavailable" retries the rebuild.
ErrorKind = Literal["data", "unavailable", "other"]


@dataclass(frozen=True)
class Staged:
    """What the helper hands back for one batch: everything the fold applies outside the stages."""

    events: int
    ops: list[GroupOp] = field(default_factory=list)
    counters: list[tuple[int | None, int | None, int | None, int, str, int, int]] = field(
        default_factory=list
    )
    media: list[tuple[str, str, int, str, int, int]] = field(default_factory=list)
    undecodable: list[tuple[int, str]] = field(default_factory=list)  # (seq, error)
    error: tuple[ErrorKind, str] | None = None


class StageFailed(Exception):
    """The helper could not stage a batch (``kind`` as in ``ErrorKind``)."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind


def stage_table_ddl(stage_schema: str, partitions: int) -> list[sql.Composed]:
    """Unlogged, index-free stage tables in ``stage_schema`` (created by the caller, visible to all)."""
    out: list[sql.Composed] = []
    for k in range(partitions):
        for prefix, columns in STAGES:
            cols = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in columns
            )
            out.append(
                # No autovacuum: it would compete with the fold and hold up dropping the stages.
                sql.SQL("CREATE UNLOGGED TABLE {} ({}) WITH (autovacuum_enabled = false)").format(
                    sql.Identifier(stage_schema, f"{prefix}_{k}"), cols
                )
            )
    return out


class SubjectPartitions:
    """Which partition (and helper) each record goes to: a chat's message records go to the partition
    its first record picked (the one with the fewest records so far); every other record to 0."""

    def __init__(self, partitions: int) -> None:
        self._of: dict[str, int] = {}
        self.records = [0] * partitions

    def of(self, subject: str) -> int:
        """The partition of a record on ``subject``, counted there."""
        k = self._of.get(subject)
        if k is None:
            k = (
                0
                if chat_of_message_subject(subject) is None
                else min(range(len(self.records)), key=self.records.__getitem__)
            )
            self._of[subject] = k
        self.records[k] += 1
        return k

    def split(self, batch: Sequence[RawRecord]) -> list[list[RawRecord]]:
        """``batch`` as one list per partition, each in seq order."""
        out: list[list[RawRecord]] = [[] for _ in self.records]
        of = self.of
        for record in batch:
            out[of(record.subject)].append(record)
        return out


class _Stager:
    """(Helper side.) Partition ``part``'s rows (and partition 0's deletes numbered per account) on one
    connection, one transaction for the whole load, committed by ``finish``."""

    def __init__(self, codec: Codec, database_url: str, stage_schema: str, part: int) -> None:
        self._codec = codec
        self._part = part
        self._conn = psycopg.connect(database_url, connect_timeout=10)
        self._copy = {
            (prefix, k): sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                sql.Identifier(stage_schema, f"{prefix}_{k}"),
                sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns),
            )
            for k in sorted({0, part})
            for prefix, columns in STAGES
        }
        self._types = {prefix: [t for _, t in columns] for prefix, columns in STAGES}
        # The message ids seen so far per (chat, id scope): this helper sees every record of its chats.
        self._seen: dict[tuple[int, str], set[int]] = {}
        # One batch's COPY runs on a thread while the next batch is decoded and built; its error
        # is reported with the next batch (the load fails as a whole either way).
        self._copying: threading.Thread | None = None
        self._copy_error: tuple[ErrorKind, str] | None = None

    def stage(self, seqs: array[int], lengths: array[int], blob: bytes) -> Staged:
        decode = self._codec.decode
        view = memoryview(blob)
        records: list[tuple[int, Event]] = []
        undecodable: list[tuple[int, str]] = []
        pos = 0
        for seq, length in zip(seqs, lengths, strict=True):
            data = view[pos : pos + length]
            pos += length
            try:
                records.append((seq, decode(data)))
            except SchemaError as e:
                undecodable.append((seq, f"{type(e).__name__}: {e}"))
        try:
            rows = build_rows(records)
        except CONVERSION_ERRORS as e:
            return Staged(len(seqs), error=("data", f"{type(e).__name__}: {e}"))
        part = self._part
        parts: dict[tuple[str, int], list[Sequence[object]]] = {key: [] for key in self._copy}
        firsts, later = parts["firsts", part], parts["later", part]
        seen = self._seen
        for m in rows.messages:
            ids = seen.get((m.chat_id, m.id_scope))
            if ids is None:
                ids = seen[m.chat_id, m.id_scope] = set()
            if m.message_id in ids:
                later.append(m)
            else:
                ids.add(m.message_id)
                firsts.append(m)
        parts["reactions", part].extend(rows.reactions)
        for d in rows.deletes:
            chat_id = d[0]
            parts["deletes", part if chat_id is not None and is_channel_id(chat_id) else 0].append(
                d
            )
        error = self._wait_for_copy()  # the previous batch's, which ran while this one was built
        if error is not None:
            return Staged(len(seqs), error=error)
        self._copying = threading.Thread(target=self._copy_parts, args=(parts,), daemon=True)
        self._copying.start()
        return Staged(len(seqs), rows.ops, rows.counters, rows.media, undecodable)

    def _copy_parts(self, parts: dict[tuple[str, int], list[Sequence[object]]]) -> None:
        """(A thread.) COPY one batch's rows; Postgres takes them in while the next batch is built."""
        try:
            with self._conn.cursor() as cur:
                for (prefix, k), staged in parts.items():
                    if staged:
                        with cur.copy(self._copy[prefix, k]) as copy:
                            copy.set_types(self._types[prefix])
                            for row in staged:
                                copy.write_row(row)
        except (psycopg.DataError, psycopg.IntegrityError) as e:
            self._copy_error = ("data", f"{type(e).__name__}: {e}")
        except (psycopg.OperationalError, psycopg.InterfaceError) as e:
            self._copy_error = ("unavailable", f"{type(e).__name__}: {e}")
        except psycopg.Error as e:
            self._copy_error = ("other", f"{type(e).__name__}: {e}")

    def _wait_for_copy(self) -> tuple[ErrorKind, str] | None:
        if self._copying is not None:
            self._copying.join()
            self._copying = None
        return self._copy_error

    def finish(self) -> tuple[ErrorKind, str] | None:
        error = self._wait_for_copy()
        if error is not None:
            return error
        try:
            self._conn.commit()
            self._conn.close()
        except (psycopg.OperationalError, psycopg.InterfaceError) as e:
            return ("unavailable", f"{type(e).__name__}: {e}")
        except psycopg.Error as e:
            return ("other", f"{type(e).__name__}: {e}")
        return None


_stager: _Stager | None = None  # the helper process's stager, set by its initializer
_staged_batches = 0
# A batch allocates ~10,000 row tuples that live until its COPY: the automatic cyclic collector would
# scan them over and over (half of the time spent building rows), so it is off in the helper. Staging
# makes no reference cycles (a collection after each batch found none, and cost ~8 % of the helper's
# time walking the live rows); one every few batches frees whatever an error path may leave.
_COLLECT_EVERY: Final = 32


def _init(codec: Codec, database_url: str, stage_schema: str, part: int) -> None:
    global _stager
    gc.disable()
    _stager = _Stager(codec, database_url, stage_schema, part)


def _stage(seqs: array[int], lengths: array[int], blob: bytes) -> Staged:
    global _staged_batches
    assert _stager is not None, "helper process not initialised"
    try:
        return _stager.stage(seqs, lengths, blob)
    finally:
        _staged_batches += 1
        if _staged_batches % _COLLECT_EVERY == 0:
            gc.collect(1)


def _finish() -> tuple[ErrorKind, str] | None:
    assert _stager is not None, "helper process not initialised"
    return _stager.finish()


def dead_letters(
    batch: Sequence[RawRecord], undecodable: list[tuple[int, str]]
) -> list[DeadLetter]:
    """Dead letters for records the helper could not decode, with their subjects and bytes."""
    by_seq = {r.seq: r for r in batch}
    return [
        DeadLetter(seq, by_seq[seq].subject, by_seq[seq].data, error) for seq, error in undecodable
    ]


class StageProcess:
    """One spawned helper that stages partition ``part``'s records in order of submission, in one
    transaction."""

    def __init__(self, *, codec: Codec, database_url: str, stage_schema: str, part: int) -> None:
        self._executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=(codec, database_url, stage_schema, part),
        )

    def submit(self, batch: Sequence[RawRecord]) -> asyncio.Future[Staged]:
        """Start staging ``batch`` (records in seq order)."""
        seqs = array("q", [r.seq for r in batch])
        lengths = array("I", [len(r.data) for r in batch])
        blob = b"".join([r.data for r in batch])
        return asyncio.wrap_future(self._executor.submit(_stage, seqs, lengths, blob))

    async def result(self, pending: asyncio.Future[Staged]) -> Staged:
        """The outcome of a submitted batch; raises ``StageFailed``."""
        staged = await asyncio.wait_for(pending, _STAGE_TIMEOUT_S)
        if staged.error is not None:
            raise StageFailed(*staged.error)
        return staged

    async def finish(self) -> None:
        """Commit every staged row (they are visible to other connections afterwards)."""
        outcome = await asyncio.wait_for(
            asyncio.wrap_future(self._executor.submit(_finish)), _STAGE_TIMEOUT_S
        )
        if outcome is not None:
            raise StageFailed(*outcome)

    async def close(self) -> None:
        """Stop the helper; an uncommitted transaction rolls back with its connection."""
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
