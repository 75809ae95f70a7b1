"""The durable local spool: append-only segment files of length-prefixed, checksummed records.

Layout under the spool directory: ``<key>.seg`` segment files read in ascending ``key`` order and
``cursor.json`` (how far each segment has been drained). A record is ``>II`` (payload length,
CRC-32 of the payload) followed by the payload (the event encoded with the codec). Writes are
``fsync``'d in small groups (every ``fsync_every`` records, and whenever ``sync()`` is called). A
torn or corrupt last record after a crash is detected by its length/CRC, logged and cut off. New
records go to a fresh tail segment after every open, so old segments are never written again.
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
        """Fsync and close the tail segment and save the cursor."""
        if not self._opened:
            return
        self.sync()
        if self._tail_fd is not None:
            os.close(self._tail_fd)
            self._tail_fd = None
        for segment in self._segments:
            segment.sealed = True
        self._save_cursor()
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
        position = offset
        records = 0
        while True:
            size = _record_size(data, position)
            if size is None:
                break
            position += size
            records += 1
        if position < len(data):
            self.torn_records += 1
            log.warning(
                "spool: %s has a torn or corrupt record at byte %d; cutting %d trailing byte(s)",
                path.name,
                position,
                len(data) - position,
            )
            with open(path, "r+b") as f:
                f.truncate(position)
                os.fsync(f.fileno())
        if records == 0:
            path.unlink()
            return
        self._segments.append(_Segment(key, path, position, offset, records, sealed=True))
        self._records += records
        self._bytes += position - offset

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
        except OSError as e:
            raise SpoolError(f"cannot write spool: {e.strerror}", path=tail.path) from e
        tail.end += len(data)
        tail.records += len(events)
        self._records += len(events)
        self._bytes += len(data)
        self.written_total += len(events)
        self._unsynced += len(events)
        if sync or self._unsynced >= self._fsync_every:
            self.sync()

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
                    if not _complete(data, position):
                        if batch.records:
                            break
                        # One record bigger than the chunk: read the rest of what is valid.
                        data += f.read(head.end - head.offset - len(data))
                    size = _record_size(data, position)
                    if (
                        size is None
                    ):  # cannot happen below ``end``: it was checked on write/recovery
                        raise SpoolError("spool record failed its checksum", path=head.path)
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
        self._save_cursor()

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
