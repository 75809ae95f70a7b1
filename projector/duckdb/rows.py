"""Pure conversion of decoded events into an Arrow table of the DuckDB ``events`` table (no I/O)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from operator import attrgetter
from typing import Final

import msgspec
import pyarrow as pa
import pyarrow.csv as pa_csv

from schemas.duckdb.tables import EVENT_COLUMNS
from schemas.events import (
    AnyEvent,
    CountersUpdated,
    MediaStored,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    MessageSnapshot,
    ReactionsUpdated,
    date_rank,
    event_kind,
)

_TS: Final = pa.timestamp("us", tz="UTC")
_ARROW: Final = {"BIGINT": pa.int64(), "VARCHAR": pa.string(), "TIMESTAMPTZ": _TS}
SCHEMA: Final = pa.schema([(c, _ARROW[t]) for c, t in EVENT_COLUMNS])


_SNAPSHOTS: Final = (MessagePosted, MessageEdited)
_MESSAGE_REFS: Final = (MessageDeleted, ReactionsUpdated, CountersUpdated, MediaStored)
_TIMES_AS_TEXT: Final = msgspec.json.Encoder()
_TIME_CSV_READ: Final = pa_csv.ReadOptions(column_names=["t"], use_threads=False)
_TIME_CSV_CONVERT: Final = pa_csv.ConvertOptions(
    column_types={"t": _TS}, null_values=["null"], quoted_strings_can_be_null=False
)


def timestamps(values: Sequence[datetime | None]) -> pa.Array:
    """The UTC timestamp array of ``values`` (None: null), as ``pa.array(values, type=_TS)`` reads them.

    pyarrow converts an aware datetime in ~0.35 µs; written as ISO 8601 by msgspec and parsed by
    Arrow's CSV reader, ~0.06 µs (docs/decisions/044-duckdb-rebuild-load-pipeline.md). A naive
    datetime (no offset) is UTC to pyarrow but an error to the parser: such a column is converted
    the slow way."""
    if values:
        try:
            text = _TIMES_AS_TEXT.encode_lines(values)
            table = pa_csv.read_csv(
                io.BytesIO(text), read_options=_TIME_CSV_READ, convert_options=_TIME_CSV_CONVERT
            )
            return table.column(0).combine_chunks()
        except pa.ArrowInvalid:
            pass
    return pa.array(values, type=_TS)


class _NoSnapshot:
    """The snapshot of an event that has none: every field the table reads is None."""

    __slots__ = ()
    message_id = date = edit_date = text = views = forwards = replies = None
    discussion_chat_id = sender = reply_to = media = action = None


_NO_SNAPSHOT: Final = _NoSnapshot()
_EVENT_FIELDS: Final = attrgetter("event_id", "account", "source", "chat_id", "observed_at")
_SNAPSHOT_FIELDS: Final = attrgetter(
    "message_id",
    "date",
    "edit_date",
    "text",
    "views",
    "forwards",
    "replies",
    "discussion_chat_id",
    "sender",
    "reply_to",
    "media",
    "action",
)


def event_table(seqs: Sequence[int], events: Sequence[AnyEvent]) -> pa.Table:
    """One Arrow row per event at its seq, columns as ``EVENT_COLUMNS``; raises on a value Arrow
    cannot hold.

    Built column by column, the plain fields of all events at once (``attrgetter``, turned into
    columns by ``zip``) and the rest one comprehension each: this runs for every event of a
    replay (docs/decisions/044-duckdb-rebuild-load-pipeline.md)."""
    if not events:
        return SCHEMA.empty_table()
    snaps = [e.message if isinstance(e, _SNAPSHOTS) else _NO_SNAPSHOT for e in events]
    event_id, account, source, chat_id, observed_at = zip(*map(_EVENT_FIELDS, events), strict=True)
    (
        message_id,
        date,
        edit_date,
        text,
        views,
        forwards,
        replies,
        discussion_chat_id,
        senders,
        reply_tos,
        media,
        actions,
    ) = (list(column) for column in zip(*map(_SNAPSHOT_FIELDS, snaps), strict=True))
    for i in [i for i, m in enumerate(snaps) if m is _NO_SNAPSHOT]:
        event = events[i]
        if isinstance(event, _MESSAGE_REFS):
            message_id[i] = event.message_id
        if isinstance(event, CountersUpdated):
            views[i], forwards[i], replies[i] = event.views, event.forwards, event.replies
    columns: dict[str, Sequence[object]] = {
        "seq": list(seqs),
        "kind": list(map(event_kind, events)),
        "event_id": event_id,
        "account": account,
        "source": source,
        "chat_id": chat_id,
        "message_id": message_id,
        "observed_at": observed_at,
        "date": date,
        "edit_date": edit_date,
        "sender_id": [None if s is None else s.id for s in senders],
        "text": text,
        "reply_to_message_id": [None if r is None else r.message_id for r in reply_tos],
        "media_type": [None if x is None else x.type for x in media],
        "action_type": [None if a is None else a.type for a in actions],
        "views": views,
        "forwards": forwards,
        "replies": replies,
        "discussion_chat_id": discussion_chat_id,
        "date_rank": [date_rank(m) if isinstance(m, MessageSnapshot) else None for m in snaps],
    }
    arrays = [
        timestamps(columns[field.name])  # type: ignore[arg-type]  # the datetime columns
        if field.type == _TS
        else pa.array(columns[field.name], type=field.type)
        for field in SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)
