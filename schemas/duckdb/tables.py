"""DuckDB tables of the analytics projection and the fold that derives ``messages`` from ``events``.

``events`` holds one row per log record (message facts with their snapshot fields, chat/ops facts
with the common fields). ``messages`` is a pure function of ``events`` implementing the rules of
``projector/rules.py`` (newest by edit_date, date, seq; edit_count = distinct edit dates; a delete
is a tombstone at the earliest observation; deletes without a chat id match non-channel messages by
account and message id), refreshed for the keys a batch touched. ``tests/contract`` proves it.

A message's key is ``(chat_id, id_scope, message_id)``: ``id_scope`` is ``''`` for channels and the
observing account elsewhere, because Telegram numbers basic-group and private-chat messages per
account (``schemas.ids.message_scope``). Every delete of a non-channel message, with or without a
chat id, names the account's message with that id.
"""

from __future__ import annotations

from typing import Final

from schemas.ids import CHANNEL_ID_OFFSET

# Marked ids below this are channels/supergroups (schemas.ids.is_channel_id).
CHANNEL_BOUND: Final = CHANNEL_ID_OFFSET

EVENT_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("seq", "BIGINT"),
    ("kind", "VARCHAR"),
    ("event_id", "VARCHAR"),
    ("account", "VARCHAR"),
    ("source", "VARCHAR"),
    ("chat_id", "BIGINT"),
    ("message_id", "BIGINT"),
    ("observed_at", "TIMESTAMPTZ"),
    ("date", "TIMESTAMPTZ"),
    ("edit_date", "TIMESTAMPTZ"),
    ("sender_id", "BIGINT"),
    ("text", "VARCHAR"),
    ("reply_to_message_id", "BIGINT"),
    ("media_type", "VARCHAR"),
    ("action_type", "VARCHAR"),
    ("views", "BIGINT"),
    ("discussion_chat_id", "BIGINT"),
    ("forwards", "BIGINT"),
    ("replies", "BIGINT"),
    ("date_rank", "BIGINT"),  # schemas.events.date_rank of a snapshot
)
# The columns of ``messages``: name, type, and the fold's expression over the newest snapshot's
# event ``l``, the per-key aggregates ``f`` and the deletes ``d`` (by chat) and ``a`` (by account).
MESSAGE_COLUMNS: Final[tuple[tuple[str, str, str], ...]] = (
    ("chat_id", "BIGINT", "l.chat_id"),
    ("message_id", "BIGINT", "l.message_id"),
    ("account", "VARCHAR", "l.account"),
    ("sender_id", "BIGINT", "l.sender_id"),
    ("date", "TIMESTAMPTZ", "l.date"),
    ("edit_date", "TIMESTAMPTZ", "l.edit_date"),
    ("text", "VARCHAR", "l.text"),
    ("reply_to_message_id", "BIGINT", "l.reply_to_message_id"),
    ("media_type", "VARCHAR", "l.media_type"),
    ("is_service", "BOOLEAN", "l.action_type IS NOT NULL"),
    ("views", "BIGINT", "CASE WHEN c.views_seq > l.seq THEN c.views ELSE l.views END"),
    ("discussion_chat_id", "BIGINT", "l.discussion_chat_id"),
    # Rule "date readings": a local reading counts alone, so its own edit date is the only one.
    (
        "edit_count",
        "BIGINT",
        "CASE WHEN f.best_rank = 2 THEN f.edit_count ELSE (l.edit_date IS NOT NULL)::BIGINT END",
    ),
    ("source", "VARCHAR", "f.source"),
    ("first_seq", "BIGINT", "f.first_seq"),
    ("last_seq", "BIGINT", "l.seq"),
    ("observed_at", "TIMESTAMPTZ", "l.observed_at"),
    ("is_deleted", "BOOLEAN", "coalesce(d.deleted_at, a.deleted_at) IS NOT NULL"),
    ("deleted_at", "TIMESTAMPTZ", "least(d.deleted_at, a.deleted_at)"),
    ("id_scope", "VARCHAR", "f.id_scope"),
    # Engagement counters: the latest reported after the newest snapshot, else the snapshot's.
    ("forwards", "BIGINT", "CASE WHEN c.forwards_seq > l.seq THEN c.forwards ELSE l.forwards END"),
    ("replies", "BIGINT", "CASE WHEN c.replies_seq > l.seq THEN c.replies ELSE l.replies END"),
    # 2 exact dates; 1 an export's local time read in a --tz zone; 0 read in a guessed zone.
    ("date_rank", "BIGINT", "l.date_rank"),
)


def _table_ddl(table: str, columns: tuple[tuple[str, str], ...]) -> list[str]:
    """Create ``table``, and add the columns a file written by an older version lacks."""
    return [
        f"CREATE TABLE IF NOT EXISTS {table} (" + ", ".join(f"{c} {t}" for c, t in columns) + ")",
        *(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {c} {t}" for c, t in columns),
    ]


DDL: Final[tuple[str, ...]] = (
    *_table_ddl("events", EVENT_COLUMNS),
    *_table_ddl("messages", tuple((c, t) for c, t, _ in MESSAGE_COLUMNS)),
    """CREATE TABLE IF NOT EXISTS projection_checkpoint (
        name VARCHAR PRIMARY KEY, seq BIGINT NOT NULL, messages_seq BIGINT NOT NULL)""",
    # One id per file: a published dataset names the file it came from, so a rebuilt file swapped
    # in is published whole again (schemas/duckdb/dataset.py).
    "CREATE TABLE IF NOT EXISTS dataset_source (file_id VARCHAR NOT NULL)",
)

_SNAPSHOT_KINDS: Final = "('message.posted', 'message.edited')"


def _scope(alias: str = "") -> str:
    """A message event's id scope (``schemas.ids.message_scope``), computed from its row."""
    a = f"{alias}." if alias else ""
    return f"CASE WHEN {a}chat_id < {CHANNEL_BOUND} THEN '' ELSE {a}account END"


# (how many of id_scope, forwards and date_rank messages has, its column count): a file written
# before message keys had an id scope, counters or date ranks gets the columns from the DDL and
# must refold every message.
MESSAGES_HAVE_SCOPE: Final = (
    "SELECT count(*) FILTER (WHERE column_name IN ('id_scope', 'forwards', 'date_rank')), count(*) "
    "FROM information_schema.columns WHERE table_name = 'messages'"
)
MESSAGE_COLUMNS_SINCE_SCOPE: Final = 3
# Events stored before snapshots said how their dates were read: exact, except an import's
# (schemas.upcast lifts those to a local reading in an unrecorded zone, the lowest rank).
RANK_OLD_EVENTS: Final = f"""
UPDATE events SET date_rank = CASE WHEN source = 'import' THEN 0 ELSE 2 END
WHERE date_rank IS NULL AND kind IN {"('message.posted', 'message.edited')"}
"""

# Every engagement counter a message showed over time (snapshots and counter updates), for views
# over time; ``messages`` holds the current values.
COUNTERS_HISTORY_VIEW: Final = f"""
CREATE OR REPLACE VIEW message_counters_history AS
SELECT chat_id, {_scope()} AS id_scope, message_id, observed_at, seq, kind, source, views, forwards,
       replies
FROM events
WHERE kind IN ('message.posted', 'message.edited', 'message.counters') AND chat_id IS NOT NULL
  AND (views IS NOT NULL OR forwards IS NOT NULL OR replies IS NOT NULL)
"""

# Keys whose row must be recomputed because events after $from_seq touched them.
DIRTY_KEYS: Final = f"""
CREATE OR REPLACE TEMP TABLE dirty_keys AS
SELECT DISTINCT chat_id, {_scope()} AS id_scope, message_id FROM events
WHERE seq > $from_seq AND seq <= $to_seq AND chat_id IS NOT NULL AND message_id IS NOT NULL
  AND kind IN ('message.posted', 'message.edited', 'message.counters')
UNION
SELECT DISTINCT chat_id, '' AS id_scope, message_id FROM events
WHERE seq > $from_seq AND seq <= $to_seq AND chat_id < {CHANNEL_BOUND} AND message_id IS NOT NULL
  AND kind = 'message.deleted'
UNION
SELECT DISTINCT m.chat_id, m.account AS id_scope, m.message_id FROM events d JOIN events m
  ON m.account = d.account AND m.message_id = d.message_id AND m.chat_id > {CHANNEL_BOUND}
WHERE d.seq > $from_seq AND d.seq <= $to_seq AND d.kind = 'message.deleted'
  AND (d.chat_id IS NULL OR d.chat_id > {CHANNEL_BOUND}) AND m.kind IN {_SNAPSHOT_KINDS}
"""

DELETE_DIRTY: Final = """
DELETE FROM messages USING dirty_keys k
WHERE messages.chat_id = k.chat_id AND messages.id_scope = k.id_scope AND messages.message_id = k.message_id
"""


# The fold for the dirty keys (incremental) or for every key (a first fold: nothing to compare with).
# The newest snapshot is picked by an aggregate over a narrow (seq, ordering key) pair and its columns
# joined back by seq: a window over whole rows, or ``arg_max`` of a struct of them, carries every
# text through a sort or the hash table and made a 1M-event fold 2-3x slower.
def fold_select(events: str = "events", keys: str = "", prelude: str = "") -> str:
    """The fold as a query: the ``messages`` rows of the events in ``events`` (a table, view or
    CTE name), limited by ``keys`` (a join on ``e``), after the CTEs of ``prelude``."""
    values = ",\n       ".join(expression for _, _, expression in MESSAGE_COLUMNS)
    return f"""
WITH {prelude + "," if prelude else ""} ev AS (
  SELECT e.*, {_scope("e")} AS id_scope FROM {events} e {keys}
  WHERE e.kind IN {_SNAPSHOT_KINDS} AND e.chat_id IS NOT NULL AND e.message_id IS NOT NULL
), firsts AS (
  -- Rule "date readings": with an exact snapshot (rank 2) the newest exact one by (edit_date,
  -- date, seq), else the best-ranked, latest local one (its dates do not order it); the edits are
  -- of exact snapshots (or the local one).
  SELECT chat_id, id_scope, message_id,
         arg_max(seq, {{'rank': date_rank,
                        'edit_date': CASE WHEN date_rank = 2
                                     THEN coalesce(edit_date, '-infinity'::TIMESTAMPTZ)
                                     ELSE '-infinity'::TIMESTAMPTZ END,
                        'date': CASE WHEN date_rank = 2 THEN coalesce(date, '-infinity'::TIMESTAMPTZ)
                                ELSE '-infinity'::TIMESTAMPTZ END,
                        'seq': seq}}) AS newest_seq,
         arg_min(source, seq) AS source, min(seq) AS first_seq, max(date_rank) AS best_rank,
         count(DISTINCT edit_date) FILTER (WHERE date_rank = 2) AS edit_count
  FROM ev GROUP BY chat_id, id_scope, message_id
), chat_dels AS (
  SELECT e.chat_id, e.message_id, min(e.observed_at) AS deleted_at FROM {events} e {keys}
  WHERE e.kind = 'message.deleted' AND e.chat_id < {CHANNEL_BOUND} AND e.message_id IS NOT NULL
  GROUP BY e.chat_id, e.message_id
), acct_dels AS (
  SELECT account, message_id, min(observed_at) AS deleted_at FROM {events}
  WHERE kind = 'message.deleted' AND (chat_id IS NULL OR chat_id > {CHANNEL_BOUND})
  GROUP BY account, message_id
), counters AS (
  SELECT e.chat_id, {_scope("e")} AS id_scope, e.message_id,
         arg_max(e.views, e.seq) FILTER (WHERE e.views IS NOT NULL) AS views,
         max(e.seq) FILTER (WHERE e.views IS NOT NULL) AS views_seq,
         arg_max(e.forwards, e.seq) FILTER (WHERE e.forwards IS NOT NULL) AS forwards,
         max(e.seq) FILTER (WHERE e.forwards IS NOT NULL) AS forwards_seq,
         arg_max(e.replies, e.seq) FILTER (WHERE e.replies IS NOT NULL) AS replies,
         max(e.seq) FILTER (WHERE e.replies IS NOT NULL) AS replies_seq
  FROM {events} e {keys} WHERE e.kind = 'message.counters' AND e.chat_id IS NOT NULL
  GROUP BY 1, 2, 3
)
SELECT {values}
FROM firsts f
JOIN {events} l ON l.seq = f.newest_seq
LEFT JOIN chat_dels d ON f.id_scope = '' AND d.chat_id = f.chat_id AND d.message_id = f.message_id
LEFT JOIN acct_dels a ON f.id_scope <> '' AND a.account = f.id_scope AND a.message_id = f.message_id
LEFT JOIN counters c ON c.chat_id = f.chat_id AND c.id_scope = f.id_scope AND c.message_id = f.message_id
"""


_INSERT: Final = f"INSERT INTO messages ({', '.join(c for c, _, _ in MESSAGE_COLUMNS)})"
INSERT_FOLDED: Final = _INSERT + fold_select(
    keys="SEMI JOIN dirty_keys k ON e.chat_id = k.chat_id AND e.message_id = k.message_id"
    f" AND {_scope('e')} = k.id_scope"
)
INSERT_FOLDED_ALL: Final = _INSERT + fold_select()
