"""Pure conversion of decoded events into an Arrow table of the DuckDB ``events`` table (no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import pyarrow as pa

from projector.records import Decoded
from schemas.duckdb.tables import EVENT_COLUMNS
from schemas.events import (
    MediaStored,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    ReactionsUpdated,
)

_TS: Final = pa.timestamp("us", tz="UTC")
_ARROW: Final = {"BIGINT": pa.int64(), "VARCHAR": pa.string(), "TIMESTAMPTZ": _TS}
SCHEMA: Final = pa.schema([(c, _ARROW[t]) for c, t in EVENT_COLUMNS])


def _kind(record: Decoded) -> str:
    tag = type(record.event).__struct_config__.tag
    return str(tag)


def event_table(records: Sequence[Decoded]) -> pa.Table:
    """One Arrow row per record, columns as ``EVENT_COLUMNS``; raises on a value Arrow cannot hold."""
    cols: list[list[object]] = [[] for _ in EVENT_COLUMNS]
    (seq, kind, event_id, account, source, chat_id, message_id, observed_at, date, edit_date, sender_id, text,
     reply_to, media_type, action_type, views) = cols
    for r in records:
        e = r.event
        seq.append(r.seq)
        kind.append(_kind(r))
        event_id.append(e.event_id)
        account.append(e.account)
        source.append(e.source)
        chat_id.append(e.chat_id)
        observed_at.append(e.observed_at)
        if isinstance(e, MessagePosted | MessageEdited):
            m = e.message
            message_id.append(m.message_id)
            date.append(m.date)
            edit_date.append(m.edit_date)
            sender_id.append(None if m.sender is None else m.sender.id)
            text.append(m.text)
            reply_to.append(None if m.reply_to is None else m.reply_to.message_id)
            media_type.append(None if m.media is None else m.media.type)
            action_type.append(None if m.action is None else m.action.type)
            views.append(m.views)
            continue
        if isinstance(e, MessageDeleted | ReactionsUpdated | MediaStored):
            message_id.append(e.message_id)
        else:
            message_id.append(None)
        for col in (date, edit_date, sender_id, text, reply_to, media_type, action_type, views):
            col.append(None)
    arrays = [pa.array(values, type=field.type) for values, field in zip(cols, SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)
