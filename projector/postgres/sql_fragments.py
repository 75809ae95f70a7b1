"""SQL fragments of the fold's rules that both the live merge (``projector.postgres.sql``) and the
bulk fold (``projector.postgres.sql_bulk``) build their statements from."""

from __future__ import annotations

from typing import Final

from projector.postgres.rows import JSON_COLUMNS, MESSAGE_STAGE_COLUMNS
from schemas.ids import CHANNEL_ID_OFFSET

# Columns copied straight from the stage into messages (the newest snapshot's); jsonb ones are cast
# from their JSON text. The key, reactions (merged on their own) and bookkeeping are not.
NOT_CONTENT: Final = frozenset(
    {
        "chat_id",
        "id_scope",
        "message_id",
        "reactions",
        "seq",
        "first_seq",
        "first_source",
        "content_hash",
        "counts",
    }
)
JSONB: Final = JSON_COLUMNS
CONTENT: Final = tuple(c for c, _ in MESSAGE_STAGE_COLUMNS if c not in NOT_CONTENT)
# A snapshot is newer by (edit_date, date, seq): the row keeps the newest version. A counted
# snapshot always replaces a row showing a local reading (rule "date readings": only the best,
# latest one counts; the stage holds only snapshots that count against the row).
NEWER: Final = (
    "(m.date_rank < 2 OR "
    "(coalesce(EXCLUDED.edit_date, '-infinity'::timestamptz), EXCLUDED.date, EXCLUDED.last_seq)"
    " > (coalesce(m.edit_date, '-infinity'::timestamptz), m.date, m.last_seq))"
)
# The first sighting's content on messages: the original version, which message_versions records
# only once a second content arrives (docs/decisions/026-versions-only-of-edited-messages.md).
FIRST_VERSION: Final = ("content_hash", "first_edit_date", "first_observed_at", "first_media")
KEY: Final = "chat_id, id_scope, message_id"


def first_sighting(name: str, where: str) -> str:
    """The first staged snapshot per key (of those ``where`` selects), with its source, seq,
    whether it counts, and its first-version columns (``<name>.<column>``)."""
    return f"""{name} AS (
  SELECT DISTINCT ON ({KEY}) {KEY}, seq, first_source AS source, counts,
         content_hash, edit_date AS first_edit_date, observed_at AS first_observed_at, media::jsonb AS first_media
  FROM stage_messages WHERE {where} ORDER BY {KEY}, seq
)"""


# A first snapshot (f) whose message has no later one.
NO_LATER: Final = (
    "NOT EXISTS (SELECT 1 FROM stage_later l WHERE l.chat_id = f.chat_id AND l.id_scope = f.id_scope "
    "AND l.message_id = f.message_id)"
)
# The first counted snapshot per key in the stage (f.<column>): the original version.
FIRST_SIGHTING: Final = first_sighting("f", "counts")
# Marked ids below this are channels/supergroups (schemas.ids.is_channel_id).
CHANNEL_BOUND: Final = CHANNEL_ID_OFFSET


def kind_of(chat_id: str) -> str:
    """The kind of a chat known only from its messages or a leave (projector.rules.inferred_kind)."""
    return (
        f"CASE WHEN {chat_id} < {CHANNEL_BOUND} THEN 'supergroup' WHEN {chat_id} < 0 THEN 'group' "
        "ELSE 'private' END"
    )


KIND: Final = kind_of("chat_id")
# The bulk inserts of messages count their rows per chat as they go (bulk_groups adds them up), so
# the groups need no second pass over messages.
GROUP_RETURNING: Final = "chat_id, date, last_seq"
COUNT_GROUPS: Final = (
    "INSERT INTO stage_group_counts SELECT chat_id, count(*), max(date), max(last_seq) FROM ins "
    "GROUP BY chat_id"
)
# A tombstone keeps the earliest observation and the earliest record of a delete (rules._first_delete).
TOMB: Final = (
    "is_deleted = true, deleted_at = LEAST(m.deleted_at, {d}.deleted_at), "
    "deleted_seq = LEAST(m.deleted_seq, {d}.seq)"
)
TOMB_CHANGES: Final = (
    "(NOT m.is_deleted OR {d}.seq < m.deleted_seq OR {d}.deleted_at < m.deleted_at)"
)
# A parked delete keeps the earliest observation and record of it.
KEEP_FIRST_DELETE: Final = (
    "deleted_at = LEAST(p.deleted_at, EXCLUDED.deleted_at), seq = LEAST(p.seq, EXCLUDED.seq) "
    "WHERE EXCLUDED.seq < p.seq OR EXCLUDED.deleted_at < p.deleted_at"
)


def chat_deletes(source: str) -> str:
    """The channel deletes of ``source`` (a delete stage), one per message with its earliest
    observation and record (rules._first_delete)."""
    return (
        f"SELECT chat_id, message_id, min(deleted_at) AS deleted_at, min(seq) AS seq FROM {source} "
        f"WHERE chat_id < {CHANNEL_BOUND} GROUP BY chat_id, message_id"
    )


def account_deletes(source: str) -> str:
    """The deletes of ``source`` numbered per account (no chat id, or outside channels), one per
    message with its earliest observation and record."""
    return (
        f"SELECT account, message_id, min(deleted_at) AS deleted_at, min(seq) AS seq FROM {source} "
        f"WHERE chat_id IS NULL OR chat_id > {CHANNEL_BOUND} GROUP BY account, message_id"
    )


# A bulk-loaded message is inserted with its tombstone where a delete names it (PgSql.bulk_tombstones):
# what applying the deletes to the loaded rows gives, without updating them afterwards (channel
# messages by chat key, the others by account).
TOMBSTONE_COLUMNS: Final = "is_deleted, deleted_at, deleted_seq"
TOMBSTONE_VALUES: Final = (
    "c.seq IS NOT NULL OR a.seq IS NOT NULL, coalesce(c.deleted_at, a.deleted_at), "
    "coalesce(c.seq, a.seq)"
)


def tombstone_joins(m: str) -> str:
    """The deletes of the bulk-loaded message ``m`` (a stage row) as ``c`` and ``a``."""
    return (
        f"LEFT JOIN stage_chat_tombs c ON {m}.id_scope = '' AND c.chat_id = {m}.chat_id "
        f"AND c.message_id = {m}.message_id "
        f"LEFT JOIN stage_account_tombs a ON {m}.id_scope <> '' AND a.account = {m}.id_scope "
        f"AND a.message_id = {m}.message_id"
    )


def content_of(alias: str) -> str:
    """The content columns of the stage row ``alias`` in messages' order, jsonb ones cast from text."""
    return ", ".join(f"{alias}.{c}::jsonb" if c in JSONB else f"{alias}.{c}" for c in CONTENT)
