"""The published analytics dataset: immutable Parquet files, and the manifest naming a consistent set.

The DuckDB projection publishes what it holds as files under one root
(docs/decisions/035-analytics-as-parquet-files.md)::

    <root>/CURRENT                                   the manifest readers use (a relative path)
    <root>/<generation>/manifest-<seq>.json          one per publish
    <root>/<generation>/events/day=<YYYY-MM-DD>/L<level>-<id>.parquet
    <root>/<generation>/messages/month=<YYYY-MM>/b<seq>-<id>.parquet
    <root>/<generation>/deltas/L<level>-<seq>-<id>.parquet

``events`` is one row per log record, in day partitions (by observation time, UTC). ``messages``
is the fold, per month of the message date (which never changes), plus delta files holding the
current row of every message changed since; a reader takes a message's row from its newest delta,
else from its month. Files never change once named by a manifest; a new manifest names new files and retires
old ones. This module is the contract between the writer and every reader: the manifest's shape
and the views a reader creates over it (no I/O).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

from schemas.duckdb.tables import (
    COUNTERS_HISTORY_VIEW,
    EVENT_COLUMNS,
    MESSAGE_COLUMNS,
    fold_select,
)

FORMAT: Final = 1
POINTER: Final = "CURRENT"
# Delta rows carry the seq they were published at: a message's newest delta row wins.
PUBLISHED_SEQ: Final = "published_seq"
_KEY: Final = ("chat_id", "id_scope", "message_id")


class DataFile(msgspec.Struct, frozen=True, kw_only=True):
    """One immutable Parquet file of the dataset."""

    path: str  # relative to the dataset root
    partition: str  # "day=…", "month=…", or "" for a delta
    level: int = 0  # how many merges it took (tiered compaction)
    rows: int = 0  # known for deltas and merged files
    bytes: int = 0


class Retired(msgspec.Struct, frozen=True, kw_only=True):
    """A file or directory no manifest names any more, deleted once readers had time to move on."""

    path: str
    since: float  # time.time() when it was retired


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """A consistent set of files: the projection as of ``seq``."""

    format: int = FORMAT
    generation: str  # the directory of this generation's files
    source: str  # the id of the DuckDB file it was published from
    seq: int
    published_at: datetime
    message_rows: int  # rows of messages at ``seq``
    events: tuple[DataFile, ...]
    messages: tuple[DataFile, ...]
    deltas: tuple[DataFile, ...]
    retired: tuple[Retired, ...] = ()


_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(Manifest)


def encode_manifest(manifest: Manifest) -> bytes:
    """The manifest as JSON."""
    return _encoder.encode(manifest)


def decode_manifest(data: bytes) -> Manifest:
    """A manifest from JSON; ``msgspec.ValidationError`` / ``DecodeError`` if it is not one."""
    return _decoder.decode(data)


def manifest_name(seq: int) -> str:
    """The file name of the manifest of ``seq``."""
    return f"manifest-{seq:012d}.json"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _files(root: str, files: tuple[DataFile, ...]) -> str:
    paths = ", ".join(_quote(f"{root}/{f.path}") for f in files)
    return f"read_parquet([{paths}], hive_partitioning = false)"


def _empty(columns: tuple[tuple[str, str], ...]) -> str:
    return "(SELECT " + ", ".join(f"NULL::{t} AS {c}" for c, t in columns) + " WHERE false)"


_EVENTS: Final = EVENT_COLUMNS
_MESSAGES: Final = tuple((c, t) for c, t, _ in MESSAGE_COLUMNS)


def view_statements(root: str, manifest: Manifest) -> list[str]:
    """The views a reader creates over ``manifest``'s files (``root``: the dataset root as the
    reader sees it): ``events``, ``messages``, ``message_counters_history`` and the as-of macros
    ``events_as_of(seq)``, ``messages_as_of(seq)`` and ``messages_at(time)``."""
    event_cols = ", ".join(c for c, _ in _EVENTS)
    cols = ", ".join(c for c, _ in _MESSAGES)
    events = _files(root, manifest.events) if manifest.events else _empty(_EVENTS)
    base = _files(root, manifest.messages) if manifest.messages else _empty(_MESSAGES)
    if manifest.deltas:
        same = " AND ".join(f"d.{k} = b.{k}" for k in _KEY)
        messages = f"""WITH d AS (
  SELECT {cols} FROM {_files(root, manifest.deltas)}
  QUALIFY row_number() OVER (PARTITION BY {", ".join(_KEY)} ORDER BY {PUBLISHED_SEQ} DESC) = 1
)
SELECT {cols} FROM {base} b WHERE NOT EXISTS (SELECT 1 FROM d WHERE {same})
UNION ALL SELECT {cols} FROM d"""
    else:
        messages = f"SELECT {cols} FROM {base}"
    return [
        f"CREATE OR REPLACE VIEW events AS SELECT {event_cols} FROM {events}",
        f"CREATE OR REPLACE VIEW messages AS {messages}",
        COUNTERS_HISTORY_VIEW,
        "CREATE OR REPLACE MACRO events_as_of(max_seq) AS TABLE "
        "SELECT * FROM events WHERE seq <= max_seq",
        "CREATE OR REPLACE MACRO messages_as_of(max_seq) AS TABLE "
        + fold_select("src", prelude="src AS (SELECT * FROM events WHERE seq <= max_seq)"),
        "CREATE OR REPLACE MACRO messages_at(at_time) AS TABLE "
        + fold_select(
            "src", prelude="src AS (SELECT * FROM events WHERE observed_at <= at_time::TIMESTAMPTZ)"
        ),
    ]
