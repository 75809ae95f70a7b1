"""The durable local spool: append-only segment files of length-prefixed, checksummed records.

Layout under the spool directory: ``<key>.seg`` segment files read in ascending ``key`` order and
``cursor.json`` (how far each segment has been drained). A record is ``>II`` (payload length,
CRC-32 of the payload) followed by the payload (the event encoded with the codec). Writes are
``fsync``'d in small groups (every ``fsync_every`` records, and whenever ``sync()`` is called). A
write that fails (a full disk) is rolled back: the segment is cut back to its last whole record,
so a later write never lands behind a torn one. ``open`` verifies every segment: a torn last
record (a crash mid-write) is the only thing ever cut, and is reported with its size; a record in
the middle that fails its checksum is reported once with its position, handed out as a bad record
(the sink dead-letters it) and the rest of the segment is still drained. New records go to a fresh
tail segment after every open, so old segments are never written again.
``prepend`` writes a segment that is read before all others (events that must keep their place
ahead of what is already spooled). Fully drained segments are deleted.

Blocking file I/O runs on the caller's thread: records are small and grouped, and the append
path needs the write to be done (or fsync'd) before it reports an event as spooled.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ingest.durable.errors import SpoolError
from schemas.codec import Codec
from schemas.errors import SchemaError
from schemas.events import Event

log = logging.getLogger(__name__)

HEADER: Final = struct.Struct(">II")  # payload length, CRC-32 (zlib) of the payload
MAX_RECORD_BYTES: Final = 64 * 1024 * 1024  # a length above this is corruption, not a record
FIRST_KEY: Final = 10**15  # keys below are left for prepended segments
_SUFFIX: Final = ".seg"
_READ_CHUNK: Final = 1024 * 1024


@dataclass
class _Segment:
    key: int
    path: Path
    end: int  # bytes of valid records in the file
    offset: int  # bytes already drained
    records: int  # records not yet drained
    sealed: bool  # no more writes (only the tail is unsealed)
    corrupt: dict[int, int] = field(default_factory=dict)  # start -> end of damaged regions


@dataclass
class SpoolBatch:
    """Records read from the head of the spool (not yet drained until ``Spool.commit``)."""

    events: list[Event]
    bad: list[tuple[bytes, str]] = field(default_factory=list)  # payloads that do not decode
    key: int = 0
    start: int = 0
    end: int = 0
    records: int = 0


class Spool:
    """Append-only on-disk FIFO of events; ``open`` recovers, ``peek``/``commit`` drain in order."""

    def __init__(
        self,
        directory: Path,
        *,
        codec: Codec,
        segment_max_bytes: int = 16 * 1024 * 1024,
        fsync_every: int = 64,
    ) -> None:
        self.directory = directory
        self._codec = codec
        self._segment_max_bytes = segment_max_bytes
        self._fsync_every = max(1, fsync_every)
        self._segments: list[_Segment] = []
        self._tail_fd: int | None = None
        self._unsynced = 0
        self._records = 0
        self._bytes = 0
        self.torn_records = 0
        self.corrupt_records = 0
        self._cursor_stale = False
        self.written_total = 0
        self._opened = False
        self._lock_fd: int | None = None

    # --- state ------------------------------------------------------------------------------------

    @property
    def depth_records(self) -> int:
        """Records spooled and not yet drained."""
        return self._records

    @property
    def depth_bytes(self) -> int:
        """Bytes of records spooled and not yet drained (headers included)."""
        return self._bytes

    @property
    def is_open(self) -> bool:
        """True between ``open`` and ``close``."""
        return self._opened

    def segment_paths(self) -> list[Path]:
        """The segment files, in read order."""
        return [s.path for s in self._segments]

    # --- lifecycle --------------------------------------------------------------------------------

    def open(self) -> None:
        """Create the directory, scan existing segments (cutting off torn tails) and load the cursor."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock()
            offsets = self._load_cursor()
            for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
                try:
                    key = int(path.stem)
                except ValueError:
                    log.warning("spool: ignoring stray file %s", path.name)
                    continue
                self._recover(key, path, offsets.get(key, 0))
        except OSError as e:
            self._unlock()
            raise SpoolError(f"cannot open spool: {e.strerror}", path=self.directory) from e
        self._segments.sort(key=lambda s: s.key)
        self._opened = True
        self._save_cursor()
        if self._records:
            log.info(
                "spool: %d record(s) (%d bytes) waiting to be drained", self._records, self._bytes
            )

    def close(self) -> None:
        """Fsync and close the tail segment and save the cursor; a failure is logged, not raised."""
        if not self._opened:
            return
        try:
            self.sync()
        except SpoolError as e:
            log.error("spool: %s while closing", e)
        if self._tail_fd is not None:
            os.close(self._tail_fd)
            self._tail_fd = None
        for segment in self._segments:
            segment.sealed = True
        try:
            self._save_cursor()
        except SpoolError as e:
            # A stale cursor only re-sends drained records, which the log deduplicates.
            log.error("spool: %s while closing", e)
        self._opened = False
        self._unlock()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def _lock(self) -> None:
        """One process per spool: a second writer would break the order of both."""
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(fd)
            raise SpoolError("spool is in use by another process", path=self.directory) from e
        self._lock_fd = fd

    def _recover(self, key: int, path: Path, offset: int) -> None:
        data = path.read_bytes()
        offset = min(offset, len(data))
        scan = _scan(data, offset)
        for start, end in scan.corrupt.items():
            self.corrupt_records += 1
            log.error(
                "spool: %s: record at byte %d fails its checksum; %d byte(s) set aside as a bad "
                "record, the rest of the segment is drained",
                path.name,
                start,
                end - start,
            )
        if scan.end < len(data):
            self.torn_records += 1
            log.warning(
                "spool: %s ends in a torn record at byte %d (a crash mid-write); cutting its %d byte(s)",
                path.name,
                scan.end,
                len(data) - scan.end,
            )
            with open(path, "r+b") as f:
                f.truncate(scan.end)
                os.fsync(f.fileno())
        if scan.records == 0:
            path.unlink()
            return
        self._segments.append(
            _Segment(key, path, scan.end, offset, scan.records, sealed=True, corrupt=scan.corrupt)
        )
        self._records += scan.records
        self._bytes += scan.end - offset

    # --- writing ----------------------------------------------------------------------------------

    def append(self, events: Sequence[Event], *, sync: bool = False) -> None:
        """Write events at the tail; fsync'd now if ``sync`` or a group of records is complete."""
        if not events:
            return
        self._require_open()
        data = b"".join(_frame(self._codec.encode(e)) for e in events)
        tail = self._segments[-1] if self._segments and not self._segments[-1].sealed else None
        if tail is None or (tail.end > 0 and tail.end + len(data) > self._segment_max_bytes):
            tail = self._new_tail()
        assert self._tail_fd is not None
        try:
            _write_all(self._tail_fd, data)
            if sync:
                os.fsync(self._tail_fd)
        except OSError as e:
            self._roll_back(tail)
            raise SpoolError(f"cannot write spool: {e.strerror}", path=tail.path) from e
        tail.end += len(data)
        tail.records += len(events)
        self._records += len(events)
        self._bytes += len(data)
        self.written_total += len(events)
        self._unsynced += len(events)
        if sync:
            self._unsynced = 0
        elif self._unsynced >= self._fsync_every:
            self.sync()

    def _roll_back(self, tail: _Segment) -> None:
        """Cut the tail back to its last whole record after a failed write (nothing torn stays)."""
        assert self._tail_fd is not None
        try:
            os.ftruncate(self._tail_fd, tail.end)
        except OSError as e:
            # The next write would land behind a torn record: seal the segment at its valid end
            # (open() cuts the rest) and write new records to a fresh one.
            log.error("spool: cannot cut %s back after a failed write: %s", tail.path, e.strerror)
            os.close(self._tail_fd)
            self._tail_fd = None
            tail.sealed = True

    def prepend(self, events: Sequence[Event]) -> SpoolBatch:
        """Write events so they are read before everything already spooled (fsync'd now).

        Returns the batch they form at the head: ``commit`` of it drops them again (they reached
        the log by other means) as long as nothing was drained or prepended since.
        """
        if not events:
            raise ValueError("prepend of no events")
        self._require_open()
        key = (self._segments[0].key if self._segments else FIRST_KEY) - 1
        path = self.directory / f"{key:020d}{_SUFFIX}"
        data = b"".join(_frame(self._codec.encode(e)) for e in events)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._fsync_directory()
        except OSError as e:
            path.unlink(missing_ok=True)  # never leave a partial segment ahead of the others
            raise SpoolError(f"cannot write spool: {e.strerror}", path=path) from e
        self._segments.insert(0, _Segment(key, path, len(data), 0, len(events), sealed=True))
        self._records += len(events)
        self._bytes += len(data)
        self.written_total += len(events)
        return SpoolBatch(events=list(events), key=key, start=0, end=len(data), records=len(events))

    def sync(self) -> None:
        """Fsync the tail segment if it has unsynced records."""
        if self._tail_fd is not None and self._unsynced:
            try:
                os.fsync(self._tail_fd)
            except OSError as e:
                raise SpoolError(f"cannot fsync spool: {e.strerror}", path=self.directory) from e
        self._unsynced = 0

    def _new_tail(self) -> _Segment:
        if self._segments and not self._segments[-1].sealed:
            self._seal_tail()
        key = max((s.key for s in self._segments), default=FIRST_KEY - 1) + 1
        key = max(key, FIRST_KEY)
        path = self.directory / f"{key:020d}{_SUFFIX}"
        try:
            self._tail_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._fsync_directory()
        except OSError as e:
            raise SpoolError(f"cannot create spool segment: {e.strerror}", path=path) from e
        segment = _Segment(key, path, 0, 0, 0, sealed=False)
        self._segments.append(segment)
        return segment

    def _seal_tail(self) -> None:
        self.sync()
        if self._tail_fd is not None:
            os.close(self._tail_fd)
            self._tail_fd = None
        if self._segments:
            self._segments[-1].sealed = True

    # --- draining ---------------------------------------------------------------------------------

    def peek(self, max_records: int) -> SpoolBatch | None:
        """Up to ``max_records`` records from the head segment, decoded; None when the spool is empty."""
        self._require_open()
        while self._segments and self._segments[0].records == 0:
            self._drop_head()
        if not self._segments:
            return None
        head = self._segments[0]
        batch = SpoolBatch(events=[], key=head.key, start=head.offset, end=head.offset)
        try:
            with open(head.path, "rb") as f:
                f.seek(head.offset)
                data = f.read(min(_READ_CHUNK, head.end - head.offset))
                position = 0
                while batch.records < max_records and batch.end < head.end:
                    bad_end = head.corrupt.get(batch.end)
                    if bad_end is not None:
                        batch.bad.append(
                            (
                                b"",
                                f"{bad_end - batch.end} damaged byte(s) at byte {batch.end} "
                                f"of spool segment {head.path.name}",
                            )
                        )
                        f.seek(bad_end)
                        data = f.read(min(_READ_CHUNK, head.end - bad_end))
                        position = 0
                        batch.end = bad_end
                        batch.records += 1
                        continue
                    if not _complete(data, position):
                        if batch.records:
                            break
                        # One record bigger than the chunk: read the rest of what is valid.
                        base = batch.end - position  # file offset of data[0]
                        data += f.read(head.end - base - len(data))
                    size = _record_size(data, position)
                    if size is None:
                        # Checked on write and on open: damage since then (the disk) sets the rest
                        # of the segment aside, reported once, instead of failing every drain.
                        log.error(
                            "spool: %s: record at byte %d no longer passes its checksum; "
                            "setting the segment's last %d byte(s) aside",
                            head.path.name,
                            batch.end,
                            head.end - batch.end,
                        )
                        head.corrupt[batch.end] = head.end
                        self._records -= head.records - batch.records - 1
                        head.records = batch.records + 1
                        continue
                    payload = bytes(data[position + HEADER.size : position + size])
                    try:
                        batch.events.append(self._codec.decode(payload))
                    except SchemaError as e:
                        batch.bad.append((payload, f"{type(e).__name__}: {e}"))
                    position += size
                    batch.end += size
                    batch.records += 1
        except OSError as e:
            raise SpoolError(f"cannot read spool: {e.strerror}", path=head.path) from e
        return batch

    def commit(self, batch: SpoolBatch) -> None:
        """Mark ``batch`` drained; a fully drained segment is deleted."""
        self._require_open()
        if (
            not self._segments
            or self._segments[0].key != batch.key
            or self._segments[0].offset != batch.start
        ):
            raise SpoolError(
                "commit of a batch that is not at the head of the spool", path=self.directory
            )
        head = self._segments[0]
        head.offset = batch.end
        head.records -= batch.records
        self._records -= batch.records
        self._bytes -= batch.end - batch.start
        if head.records == 0:
            self._drop_head()
        try:
            self._save_cursor()
        except SpoolError as e:
            # A stale cursor only re-sends drained records, which the log deduplicates; a full
            # disk must not stop the drain that frees it.
            if not self._cursor_stale:
                log.warning("spool: %s; draining on with a stale cursor", e)
            self._cursor_stale = True
        else:
            self._cursor_stale = False

    def _drop_head(self) -> None:
        head = self._segments[0]
        if not head.sealed:
            self._seal_tail()
        self._segments.pop(0)
        try:
            head.path.unlink(missing_ok=True)
        except OSError as e:
            raise SpoolError(f"cannot delete drained segment: {e.strerror}", path=head.path) from e

    # --- cursor -----------------------------------------------------------------------------------

    def _cursor_path(self) -> Path:
        return self.directory / "cursor.json"

    def _load_cursor(self) -> dict[int, int]:
        try:
            raw = json.loads(self._cursor_path().read_text())
            return {int(k): int(v) for k, v in raw.get("offsets", {}).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _save_cursor(self) -> None:
        # Not fsync'd: a stale cursor only re-sends drained records, which the log deduplicates.
        offsets = {str(s.key): s.offset for s in self._segments if s.offset}
        tmp = self._cursor_path().with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps({"offsets": offsets}))
            os.replace(tmp, self._cursor_path())
        except OSError as e:
            raise SpoolError(f"cannot save spool cursor: {e.strerror}", path=tmp) from e

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _require_open(self) -> None:
        if not self._opened:
            raise SpoolError("spool is not open", path=self.directory)


@dataclass
class _Scan:
    end: int  # end of the last whole record; what follows is a torn tail
    records: int  # whole records, each damaged region counted as one
    corrupt: dict[int, int]  # start -> end of damaged regions followed by whole records


def _scan(data: bytes, start: int) -> _Scan:
    """Walk the records of a segment from ``start``; a damaged record in the middle is skipped to
    the next whole record (found by its length and checksum), a damaged tail is left to be cut."""
    scan = _Scan(end=start, records=0, corrupt={})
    position = start
    while position < len(data):
        size = _record_size(data, position)
        if size is not None:
            position += size
            scan.end = position
            scan.records += 1
            continue
        resume = _next_record(data, position + 1)
        if resume is None:
            break  # nothing whole follows: a torn tail
        scan.corrupt[position] = resume
        scan.records += 1
        position = resume
    return scan


def _next_record(data: bytes, start: int) -> int | None:
    """The first offset from ``start`` where a whole record begins (length fits, checksum matches)."""
    for position in range(start, len(data) - HEADER.size + 1):
        size = _record_size(data, position)
        if size is not None and size > HEADER.size:
            return position
    return None


def _frame(payload: bytes) -> bytes:
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _complete(data: bytes, position: int) -> bool:
    """True if ``data`` holds the whole record starting at ``position``."""
    if position + HEADER.size > len(data):
        return False
    length: int = HEADER.unpack_from(data, position)[0]
    return position + HEADER.size + length <= len(data)


def _record_size(data: bytes, position: int) -> int | None:
    """Size of the valid record at ``position`` (header included), or None if torn/corrupt/absent."""
    if position + HEADER.size > len(data):
        return None
    length: int
    crc: int
    length, crc = HEADER.unpack_from(data, position)
    if length > MAX_RECORD_BYTES or position + HEADER.size + length > len(data):
        return None
    start = position + HEADER.size
    if zlib.crc32(data[start : start + length]) != crc:
        return None
    return HEADER.size + length


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
