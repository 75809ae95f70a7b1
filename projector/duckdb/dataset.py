"""Publishing the DuckDB projection as Parquet files whose cost grows with new data, not all data.

Each publish writes the events since the last manifest (one file per day they fall in) and one
delta file with the current rows of the messages they touched, then a new manifest naming the
consistent set, made current by an atomic rename of ``CURRENT``. Small files are merged in tiers
(``fanout`` files of one level make one file of the next), so each row is rewritten a few times
over its life. When the deltas hold more than ``fold_in_rows`` rows, the months they touch are
written again from the table and the deltas retired. A file no manifest names any more is
deleted after ``grace_s``; a new source file (a rebuild swapped in) starts a new generation.
The layout and the readers' views are in ``schemas/duckdb/dataset.py``;
docs/decisions/035-analytics-as-parquet-files.md has the reasons and figures.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import msgspec

import duckdb
from schemas.duckdb.dataset import (
    POINTER,
    PUBLISHED_SEQ,
    DataFile,
    Manifest,
    Retired,
    decode_manifest,
    encode_manifest,
    manifest_name,
    view_statements,
)
from schemas.duckdb.tables import DIRTY_KEYS, EVENT_COLUMNS, MESSAGE_COLUMNS
from schemas.ids import CHANNEL_ID_OFFSET

log = logging.getLogger(__name__)

_EVENT_NAMES: Final = ", ".join(c for c, _ in EVENT_COLUMNS)
_MESSAGE_NAMES: Final = ", ".join(c for c, _, _ in MESSAGE_COLUMNS)
_KEY_JOIN: Final = (
    "m.chat_id = k.chat_id AND m.id_scope = k.id_scope AND m.message_id = k.message_id"
)
_DAY: Final = "coalesce(strftime(observed_at AT TIME ZONE 'UTC', '%Y-%m-%d'), 'none')"
_MONTH: Final = "coalesce(strftime(m.date AT TIME ZONE 'UTC', '%Y-%m'), 'none')"
_PARQUET: Final = "FORMAT parquet, COMPRESSION zstd"
# A snapshot event's id scope (schemas.ids.message_scope), over the events table aliased m.
_EVENT_SCOPE: Final = f"CASE WHEN m.chat_id < {CHANNEL_ID_OFFSET} THEN '' ELSE m.account END"


def dataset_dir(duckdb_file: Path) -> Path:
    """Where the dataset of ``duckdb_file`` is published."""
    return duckdb_file.parent / "snapshots"


@dataclass(frozen=True)
class Published:
    """What one publish did."""

    manifest: Path
    seq: int
    full: bool
    bytes_written: int


def read_current(root: Path) -> tuple[str, Manifest] | None:
    """The current manifest's relative path and contents, or None before the first publish."""
    try:
        name = (root / POINTER).read_text().strip()
        return name, decode_manifest((root / name).read_bytes())
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def connect_dataset(root: Path) -> tuple[duckdb.DuckDBPyConnection, str] | None:
    """An in-memory DuckDB connection with the views of the current manifest, and its name."""
    current = read_current(root)
    if current is None:
        return None
    con = duckdb.connect()
    for statement in view_statements(str(root), current[1]):
        con.execute(statement)
    return con, current[0]


def publish_file(duckdb_file: Path, seq: int) -> Published | None:
    """Publish a projection file no writer holds, as of ``seq`` (what the projector's first publish
    of a rebuilt file does; ``bench/replay.py`` times it)."""
    # The limits of the live writer: a whole-file publish must not take 80 % of RAM (DuckDB's
    # default) next to the projector.
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": "256MB",
        "threads": "2",
        "preserve_insertion_order": "false",
    }
    with duckdb.connect(str(duckdb_file), read_only=True, config=config) as con:
        source = con.execute("SELECT file_id FROM dataset_source").fetchone()
        return DatasetPublisher(dataset_dir(duckdb_file)).publish(
            con, seq, "" if source is None else str(source[0])
        )


class DatasetPublisher:
    """Publishes a DuckDB projection file's ``events`` and ``messages`` under ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        fanout: int = 8,
        grace_s: float = 120.0,
        keep_manifests: int = 3,
        fold_in_rows: int = 250_000,
    ) -> None:
        self.root = root
        self._fanout = fanout
        self._grace_s = grace_s
        self._keep = keep_manifests
        self._fold_in_rows = fold_in_rows
        self._written = 0

    def publish(
        self, con: duckdb.DuckDBPyConnection, seq: int, source: str, *, full: bool = False
    ) -> Published | None:
        """Publish the file behind ``con`` as of ``seq`` (its events and folded messages must be
        complete to ``seq``); None when the current manifest already is that."""
        self.root.mkdir(parents=True, exist_ok=True)
        current = read_current(self.root)
        old = None if current is None else current[1]
        self._written = 0
        if old is not None and old.source == source and old.seq == seq and not full:
            return None
        if full or old is None or old.source != source or old.seq > seq:
            manifest = self._full(con, seq, source, old)
        else:
            manifest = self._increment(con, seq, old)
        path = self._commit(manifest)
        full = old is None or manifest.generation != old.generation
        return Published(path, seq, full, self._written)

    # --- writing ---------------------------------------------------------------------------------

    def _copy(
        self, con: duckdb.DuckDBPyConnection, query: str, target: str, options: str
    ) -> list[str]:
        """COPY ``query`` to ``target`` (a file, or a directory with PARTITION_BY); the files written."""
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        # A partitioned write buffers this many rows per partition before it flushes (default
        # 524,288: a month of messages then takes more than the writer's 256 MB), for up to this
        # many partitions (days of events) at once; no ORDER BY, whose sort would hold them all.
        con.execute("SET partitioned_write_flush_threshold = 8192")
        con.execute("SET partitioned_write_max_open_files = 16")
        row = con.execute(
            f"COPY ({query}) TO {_quote(target)} ({_PARQUET}, {options}RETURN_FILES true)"
        ).fetchone()
        files = [] if row is None else [str(f) for f in row[1]]
        for f in files:
            with open(f, "rb") as handle:
                os.fsync(handle.fileno())
            self._written += os.path.getsize(f)
        return files

    def _data_file(self, path: str, *, level: int = 0, rows: int = 0) -> DataFile:
        rel = Path(path).relative_to(self.root)
        # <generation>/<table>/<partition…>/<file>
        partition = "/".join(rel.parts[2:-1])
        return DataFile(
            path=rel.as_posix(),
            partition=partition,
            level=level,
            rows=rows,
            bytes=os.path.getsize(path),
        )

    def _events(
        self, con: duckdb.DuckDBPyConnection, generation: str, after: int, upto: int
    ) -> list[DataFile]:
        query = (
            f"SELECT {_EVENT_NAMES}, {_DAY} AS day FROM events WHERE seq > {int(after)} "
            f"AND seq <= {int(upto)}"
        )
        files = self._copy(
            con,
            query,
            str(self.root / generation / "events"),
            "PARTITION_BY (day), FILENAME_PATTERN 'L0-{uuid}', APPEND true, ",
        )
        return [self._data_file(f) for f in files]

    def _base(
        self, con: duckdb.DuckDBPyConnection, generation: str, seq: int, only: str = ""
    ) -> list[DataFile]:
        query = f"SELECT {_MESSAGE_NAMES}, {_MONTH} AS month FROM messages m {only}"
        files = self._copy(
            con,
            query,
            str(self.root / generation / "messages"),
            f"PARTITION_BY (month), FILENAME_PATTERN 'b{seq}-{{uuid}}', APPEND true, ",
        )
        return [self._data_file(f) for f in files]

    def _delta(
        self, con: duckdb.DuckDBPyConnection, generation: str, seq: int, keys: str, level: int
    ) -> DataFile | None:
        """The current rows of the messages ``keys`` (a query of chat_id, id_scope, message_id)."""
        count = con.execute(f"SELECT count(*) FROM ({keys})").fetchone()
        if count is None or count[0] == 0:
            return None
        folder = self.root / generation / "deltas"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"L{level}-{seq:012d}-{uuid.uuid4().hex[:8]}.parquet"
        query = (
            f"SELECT {_MESSAGE_NAMES}, {int(seq)}::BIGINT AS {PUBLISHED_SEQ} FROM messages m "
            f"SEMI JOIN ({keys}) k ON {_KEY_JOIN}"
        )
        self._copy(con, query, str(target), "")
        return self._data_file(str(target), level=level, rows=int(count[0]))

    def _full(
        self, con: duckdb.DuckDBPyConnection, seq: int, source: str, old: Manifest | None
    ) -> Manifest:
        generation = f"g-{uuid.uuid4().hex[:12]}"
        events = self._events(con, generation, 0, seq)
        base = self._base(con, generation, seq)
        if old is None:  # the whole-file snapshots of earlier versions
            for leftover in self.root.glob("*.duckdb"):
                leftover.unlink(missing_ok=True)
        retired = (
            () if old is None else (*old.retired, Retired(path=old.generation, since=time.time()))
        )
        return Manifest(
            generation=generation,
            source=source,
            seq=seq,
            published_at=datetime.now(UTC),
            message_rows=_count(con),
            events=tuple(events),
            messages=tuple(base),
            deltas=(),
            retired=retired,
        )

    def _increment(self, con: duckdb.DuckDBPyConnection, seq: int, old: Manifest) -> Manifest:
        generation = old.generation
        retired: list[DataFile] = []
        events = [*old.events, *self._events(con, generation, old.seq, seq)]
        con.execute(DIRTY_KEYS, {"from_seq": old.seq, "to_seq": seq})
        deltas = list(old.deltas)
        delta = self._delta(
            con, generation, seq, "SELECT chat_id, id_scope, message_id FROM dirty_keys", 0
        )
        if delta is not None:
            deltas.append(delta)
        events, merged = self._merge_events(con, generation, events)
        retired += merged
        deltas, merged = self._merge_deltas(con, generation, seq, deltas)
        retired += merged
        base = list(old.messages)
        rows = _count(con)
        if sum(d.rows for d in deltas) > self._fold_in_rows:
            base, deltas, merged = self._fold_in(con, generation, seq, base, deltas)
            retired += merged
        now = time.time()
        return Manifest(
            generation=generation,
            source=old.source,
            seq=seq,
            published_at=datetime.now(UTC),
            message_rows=rows,
            events=tuple(events),
            messages=tuple(base),
            deltas=tuple(deltas),
            retired=(*old.retired, *(Retired(path=f.path, since=now) for f in retired)),
        )

    # --- compaction ------------------------------------------------------------------------------

    def _merge_events(
        self, con: duckdb.DuckDBPyConnection, generation: str, files: list[DataFile]
    ) -> tuple[list[DataFile], list[DataFile]]:
        """Merge ``fanout`` event files of one day and level into one file of the next level."""
        retired: list[DataFile] = []
        while True:
            groups: dict[tuple[str, int], list[DataFile]] = defaultdict(list)
            for f in files:
                groups[(f.partition, f.level)].append(f)
            full = next(((k, g) for k, g in groups.items() if len(g) >= self._fanout), None)
            if full is None:
                return files, retired
            (partition, level), group = full
            folder = self.root / generation / "events" / partition
            target = folder / f"L{level + 1}-{uuid.uuid4().hex}.parquet"
            paths = ", ".join(_quote(str(self.root / f.path)) for f in group)
            self._copy(
                con,
                f"SELECT * FROM read_parquet([{paths}], hive_partitioning = false) ORDER BY seq",
                str(target),
                "",
            )
            merged = self._data_file(str(target), level=level + 1)
            files = [f for f in files if f not in group] + [merged]
            retired += group

    def _merge_deltas(
        self, con: duckdb.DuckDBPyConnection, generation: str, seq: int, files: list[DataFile]
    ) -> tuple[list[DataFile], list[DataFile]]:
        """Replace ``fanout`` deltas of one level by one delta of the next: the current rows of the
        messages they name (newer than any of them, so it wins over each)."""
        retired: list[DataFile] = []
        while True:
            levels: dict[int, list[DataFile]] = defaultdict(list)
            for f in files:
                levels[f.level].append(f)
            full = next(
                ((lv, g) for lv, g in sorted(levels.items()) if len(g) >= self._fanout), None
            )
            if full is None:
                return files, retired
            level, group = full
            paths = ", ".join(_quote(str(self.root / f.path)) for f in group)
            keys = (
                "SELECT DISTINCT chat_id, id_scope, message_id "
                f"FROM read_parquet([{paths}], hive_partitioning = false)"
            )
            merged = self._delta(con, generation, seq, keys, level + 1)
            files = [f for f in files if f not in group] + ([] if merged is None else [merged])
            retired += group

    def _fold_in(
        self,
        con: duckdb.DuckDBPyConnection,
        generation: str,
        seq: int,
        base: list[DataFile],
        deltas: list[DataFile],
    ) -> tuple[list[DataFile], list[DataFile], list[DataFile]]:
        """Write the months the deltas touch again from the table; retire the old files of those
        months and every delta."""
        paths = ", ".join(_quote(str(self.root / f.path)) for f in deltas)
        keys = (
            f"SELECT DISTINCT chat_id, id_scope, message_id FROM read_parquet([{paths}], "
            "hive_partitioning = false)"
        )
        # A month a message left counts too: a better reading of an export's local date can move
        # it (docs/decisions/041-corrected-export-dates.md), and the old month's files still hold
        # it. Only local readings move; exact dates never change.
        touched = (
            f"SELECT DISTINCT {_MONTH} AS month FROM messages m SEMI JOIN ({keys}) k ON {_KEY_JOIN} "
            f"UNION SELECT DISTINCT {_MONTH} AS month FROM events m SEMI JOIN ({keys}) k "
            f"ON m.chat_id = k.chat_id AND m.message_id = k.message_id AND {_EVENT_SCOPE} = k.id_scope "
            "WHERE m.date_rank < 2"
        )
        parts = {f"month={r[0]}" for r in con.execute(touched).fetchall()}
        written = self._base(con, generation, seq, f"WHERE {_MONTH} IN ({touched})")
        old = [f for f in base if f.partition in parts]
        kept = [f for f in base if f.partition not in parts]
        return kept + written, [], old + deltas

    # --- the manifest ----------------------------------------------------------------------------

    def _commit(self, manifest: Manifest) -> Path:
        """Write the manifest, point CURRENT at it, then delete what readers no longer need."""
        folder = self.root / manifest.generation
        folder.mkdir(parents=True, exist_ok=True)
        now = time.time()
        due = [r for r in manifest.retired if now - r.since >= self._grace_s]
        manifest = msgspec.structs.replace(
            manifest, retired=tuple(r for r in manifest.retired if r not in due)
        )
        path = folder / manifest_name(manifest.seq)
        _write_atomically(path, encode_manifest(manifest))
        _write_atomically(self.root / POINTER, path.relative_to(self.root).as_posix().encode())
        for r in due:
            target = self.root / r.path
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        for old in sorted(folder.glob("manifest-*.json"))[: -self._keep]:
            old.unlink(missing_ok=True)
        return path


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _count(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT count(*) FROM messages").fetchone()
    return 0 if row is None else int(row[0])


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
