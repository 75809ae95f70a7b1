"""The Postgres projection's SQL, built once per target schema (live ``public`` or a rebuild schema).

The statements implement the rules of ``projector/rules.py`` (docs/decisions/018 to 021); the contract
test (``tests/contract``) holds the incremental merge and the bulk fold to them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, assert_never

from projector.postgres.rows import (
    DELETE_STAGE_COLUMNS,
    JSON_COLUMNS,
    MESSAGE_STAGE_COLUMNS,
    REACTION_STAGE_COLUMNS,
    GroupOpKind,
)
from schemas.ids import CHANNEL_ID_OFFSET

# Columns copied straight from the stage into messages (the newest snapshot's); jsonb ones are cast
# from their JSON text. The key, reactions (merged on their own) and bookkeeping are not.
_NOT_CONTENT: Final = frozenset(
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
_JSONB: Final = JSON_COLUMNS
_CONTENT: Final = tuple(c for c, _ in MESSAGE_STAGE_COLUMNS if c not in _NOT_CONTENT)
# A snapshot is newer by (edit_date, date, seq): the row keeps the newest version. A counted
# snapshot always replaces a row showing a local reading (rule "date readings": only the best,
# latest one counts; the stage holds only snapshots that count against the row).
_NEWER: Final = (
    "(m.date_rank < 2 OR "
    "(coalesce(EXCLUDED.edit_date, '-infinity'::timestamptz), EXCLUDED.date, EXCLUDED.last_seq)"
    " > (coalesce(m.edit_date, '-infinity'::timestamptz), m.date, m.last_seq))"
)
# The first sighting's content on messages: the original version, which message_versions records
# only once a second content arrives (docs/decisions/026-versions-only-of-edited-messages.md).
_FIRST_VERSION: Final = ("content_hash", "first_edit_date", "first_observed_at", "first_media")
_KEY: Final = "chat_id, id_scope, message_id"


def _first_sighting(name: str, where: str) -> str:
    """The first staged snapshot per key (of those ``where`` selects), with its source, seq,
    whether it counts, and its first-version columns (``<name>.<column>``)."""
    return f"""{name} AS (
  SELECT DISTINCT ON ({_KEY}) {_KEY}, seq, first_source AS source, counts,
         content_hash, edit_date AS first_edit_date, observed_at AS first_observed_at, media::jsonb AS first_media
  FROM stage_messages WHERE {where} ORDER BY {_KEY}, seq
)"""


# A first snapshot (f) whose message has no later one.
_NO_LATER: Final = (
    "NOT EXISTS (SELECT 1 FROM stage_later l WHERE l.chat_id = f.chat_id AND l.id_scope = f.id_scope "
    "AND l.message_id = f.message_id)"
)
# The first counted snapshot per key in the stage (f.<column>): the original version.
_FIRST_SIGHTING: Final = _first_sighting("f", "counts")
# Marked ids below this are channels/supergroups (schemas.ids.is_channel_id).
CHANNEL_BOUND: Final = CHANNEL_ID_OFFSET


def _kind_of(chat_id: str) -> str:
    """The kind of a chat known only from its messages or a leave (projector.rules.inferred_kind)."""
    return (
        f"CASE WHEN {chat_id} < {CHANNEL_BOUND} THEN 'supergroup' WHEN {chat_id} < 0 THEN 'group' "
        "ELSE 'private' END"
    )


_KIND: Final = _kind_of("chat_id")
# The bulk inserts of messages count their rows per chat as they go (bulk_groups adds them up), so
# the groups need no second pass over messages.
_GROUP_RETURNING: Final = "chat_id, date, last_seq"
_COUNT_GROUPS: Final = (
    "INSERT INTO stage_group_counts SELECT chat_id, count(*), max(date), max(last_seq) FROM ins "
    "GROUP BY chat_id"
)
# A tombstone keeps the earliest observation and the earliest record of a delete (rules._first_delete).
_TOMB: Final = (
    "is_deleted = true, deleted_at = LEAST(m.deleted_at, {d}.deleted_at), "
    "deleted_seq = LEAST(m.deleted_seq, {d}.seq)"
)
_TOMB_CHANGES: Final = (
    "(NOT m.is_deleted OR {d}.seq < m.deleted_seq OR {d}.deleted_at < m.deleted_at)"
)
# A parked delete keeps the earliest observation and record of it.
_KEEP_FIRST_DELETE: Final = (
    "deleted_at = LEAST(p.deleted_at, EXCLUDED.deleted_at), seq = LEAST(p.seq, EXCLUDED.seq) "
    "WHERE EXCLUDED.seq < p.seq OR EXCLUDED.deleted_at < p.deleted_at"
)


def _chat_deletes(source: str) -> str:
    """The channel deletes of ``source`` (a delete stage), one per message with its earliest
    observation and record (rules._first_delete)."""
    return (
        f"SELECT chat_id, message_id, min(deleted_at) AS deleted_at, min(seq) AS seq FROM {source} "
        f"WHERE chat_id < {CHANNEL_BOUND} GROUP BY chat_id, message_id"
    )


def _account_deletes(source: str) -> str:
    """The deletes of ``source`` numbered per account (no chat id, or outside channels), one per
    message with its earliest observation and record."""
    return (
        f"SELECT account, message_id, min(deleted_at) AS deleted_at, min(seq) AS seq FROM {source} "
        f"WHERE chat_id IS NULL OR chat_id > {CHANNEL_BOUND} GROUP BY account, message_id"
    )


# A bulk-loaded message is inserted with its tombstone where a delete names it (PgSql.bulk_tombstones):
# what applying the deletes to the loaded rows gives, without updating them afterwards (channel
# messages by chat key, the others by account).
_TOMBSTONE_COLUMNS: Final = "is_deleted, deleted_at, deleted_seq"
_TOMBSTONE_VALUES: Final = (
    "c.seq IS NOT NULL OR a.seq IS NOT NULL, coalesce(c.deleted_at, a.deleted_at), "
    "coalesce(c.seq, a.seq)"
)


def _tombstone_joins(m: str) -> str:
    """The deletes of the bulk-loaded message ``m`` (a stage row) as ``c`` and ``a``."""
    return (
        f"LEFT JOIN stage_chat_tombs c ON {m}.id_scope = '' AND c.chat_id = {m}.chat_id "
        f"AND c.message_id = {m}.message_id "
        f"LEFT JOIN stage_account_tombs a ON {m}.id_scope <> '' AND a.account = {m}.id_scope "
        f"AND a.message_id = {m}.message_id"
    )


def _stage_ddl(name: str, columns: tuple[tuple[str, str], ...]) -> str:
    cols = ", ".join(f"{c} {t}" for c, t in columns)
    return f"CREATE TEMP TABLE IF NOT EXISTS {name} ({cols}) ON COMMIT DELETE ROWS"


@dataclass(frozen=True)
class PgSql:
    """All statements of the projection for tables in ``schema`` and checkpoints in ``checkpoint_schema``."""

    schema: str
    checkpoint_schema: str

    @property
    def stage_ddl(self) -> list[str]:
        """Temp stage tables (per connection)."""
        return [
            _stage_ddl("stage_messages", MESSAGE_STAGE_COLUMNS),
            _stage_ddl("stage_deletes", DELETE_STAGE_COLUMNS),
        ]

    @property
    def reaction_stage_ddl(self) -> str:
        """Temp stage of reaction summaries (bulk loads only)."""
        return _stage_ddl("stage_reactions", REACTION_STAGE_COLUMNS)

    @property
    def copy_reactions(self) -> str:
        """COPY into the reaction stage."""
        return f"COPY stage_reactions ({', '.join(c for c, _ in REACTION_STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"

    @property
    def copy_messages(self) -> str:
        """COPY into the message stage."""
        return f"COPY stage_messages ({', '.join(c for c, _ in MESSAGE_STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"

    @property
    def copy_deletes(self) -> str:
        """COPY into the delete stage."""
        return f"COPY stage_deletes ({', '.join(c for c, _ in DELETE_STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"

    @property
    def merge_messages(self) -> str:
        """Upsert the newest snapshot per key; count new rows per group; track last message dates."""
        s = self.schema
        select_cols = ", ".join(f"s.{c}::jsonb" if c in _JSONB else f"s.{c}" for c in _CONTENT)
        sets = ",\n      ".join(
            f"{c} = CASE WHEN {_NEWER} THEN EXCLUDED.{c} ELSE m.{c} END" for c in _CONTENT
        )
        # content_hash NULL: the row's reading was superseded (supersede_readings), so the
        # original version is the stage's first counted snapshot.
        firsts = ",\n      ".join(
            f"{c} = CASE WHEN EXCLUDED.first_seq < m.first_seq OR m.content_hash IS NULL "
            f"THEN EXCLUDED.{c} ELSE m.{c} END"
            for c in _FIRST_VERSION
        )
        return f"""
WITH s AS (
  SELECT DISTINCT ON (chat_id, id_scope, message_id) * FROM stage_messages WHERE counts
  ORDER BY chat_id, id_scope, message_id, coalesce(edit_date, '-infinity'::timestamptz) DESC, date DESC,
           seq DESC
), {_FIRST_SIGHTING}, up AS (
  INSERT INTO {s}.messages AS m (chat_id, id_scope, message_id, {", ".join(_CONTENT)}, reactions, reactions_seq,
                                 source, first_seq, last_seq, {", ".join(_FIRST_VERSION)})
  SELECT s.chat_id, s.id_scope, s.message_id, {select_cols}, s.reactions::jsonb, s.seq, s.first_source, s.first_seq,
         s.seq, {", ".join(f"f.{c}" for c in _FIRST_VERSION)}
  FROM s JOIN f USING (chat_id, id_scope, message_id)
  ON CONFLICT (chat_id, id_scope, message_id) DO UPDATE SET
      {sets},
      {firsts},
      reactions = CASE WHEN {_NEWER} AND EXCLUDED.last_seq > m.reactions_seq THEN EXCLUDED.reactions
                       ELSE m.reactions END,
      reactions_seq = CASE WHEN {_NEWER} AND EXCLUDED.last_seq > m.reactions_seq THEN EXCLUDED.last_seq
                           ELSE m.reactions_seq END,
      last_seq = CASE WHEN {_NEWER} THEN EXCLUDED.last_seq ELSE m.last_seq END,
      source = CASE WHEN EXCLUDED.first_seq < m.first_seq THEN EXCLUDED.source ELSE m.source END,
      first_seq = LEAST(m.first_seq, EXCLUDED.first_seq)
  WHERE {_NEWER} OR EXCLUDED.first_seq < m.first_seq
  RETURNING m.chat_id, m.date, m.last_seq, (m.xmax = 0) AS inserted
), agg AS (
  SELECT chat_id, count(*) FILTER (WHERE inserted) AS n, max(date) AS last_date, max(last_seq) AS last_seq
  FROM up GROUP BY chat_id
), firsts AS (
  SELECT DISTINCT ON (chat_id) chat_id, account FROM stage_messages ORDER BY chat_id, seq
), g AS (
  INSERT INTO {s}.telegram_groups AS g (chat_id, kind, account, message_count, last_activity_at, last_seq)
  SELECT chat_id, {_KIND}, f.account, n, last_date, last_seq FROM agg JOIN firsts f USING (chat_id)
  ON CONFLICT (chat_id) DO UPDATE SET
      message_count = g.message_count + EXCLUDED.message_count,
      last_activity_at = GREATEST(g.last_activity_at, EXCLUDED.last_activity_at),
      last_seq = GREATEST(g.last_seq, EXCLUDED.last_seq),
      account = coalesce(g.account, EXCLUDED.account)
  RETURNING 1
)
UPDATE {s}.crawler_status c SET last_message_at = GREATEST(c.last_message_at, agg.last_date)
FROM agg WHERE c.chat_id = agg.chat_id"""

    @property
    def count_readings(self) -> str:
        """Rule "date readings": mark the staged snapshots that do not count. Only keys with a local
        reading are looked at: there, a local snapshot counts only as the best-ranked, latest one of
        the stage, and not below the row's rank (the stage's seqs follow the row's). Runs first."""
        s = self.schema
        return f"""
WITH t AS (
  SELECT DISTINCT ON ({_KEY}) {_KEY}, seq FROM stage_messages
  WHERE ({_KEY}) IN (SELECT {_KEY} FROM stage_messages WHERE date_rank < 2)
  ORDER BY {_KEY}, date_rank DESC, seq DESC
)
UPDATE stage_messages s SET counts = false
FROM t LEFT JOIN {s}.messages m USING ({_KEY})
WHERE s.chat_id = t.chat_id AND s.id_scope = t.id_scope AND s.message_id = t.message_id
  AND s.date_rank < 2 AND (s.seq <> t.seq OR s.date_rank < coalesce(m.date_rank, 0))"""

    @property
    def supersede_readings(self) -> str:
        """Rows that show a local reading a counted staged snapshot replaces: their edits and
        versions were of that reading and go; the merge then treats them as new (content_hash NULL:
        no original version yet). Returns the chats of those rows (their last dates may go back)."""
        s = self.schema
        same = "x.chat_id = k.chat_id AND x.id_scope = k.id_scope AND x.message_id = k.message_id"
        return f"""
WITH k AS (
  SELECT DISTINCT {_KEY} FROM stage_messages s JOIN {s}.messages m USING ({_KEY})
  WHERE s.counts AND m.date_rank < 2
), v AS (
  DELETE FROM {s}.message_versions x USING k WHERE {same} RETURNING 1
), e AS (
  DELETE FROM {s}.message_edits x USING k WHERE {same} RETURNING 1
)
UPDATE {s}.messages x SET edit_count = 0, content_hash = NULL FROM k WHERE {same}
RETURNING x.chat_id"""

    @property
    def recount_last_dates(self) -> str:
        """A chat's last activity and last message date from its rows (after a reading moved a
        date back; parameter: the chat ids)."""
        s = self.schema
        return f"""
WITH d AS (
  SELECT c.chat_id, (SELECT max(date) FROM {s}.messages m WHERE m.chat_id = c.chat_id) AS last
  FROM unnest(%s::bigint[]) AS c(chat_id)
), g AS (
  UPDATE {s}.telegram_groups g SET last_activity_at = d.last FROM d WHERE g.chat_id = d.chat_id
  RETURNING 1
)
UPDATE {s}.crawler_status c SET last_message_at = d.last FROM d WHERE c.chat_id = d.chat_id"""

    @property
    def insert_versions(self) -> str:
        """Record the versions of messages that now have more than one content (first sighting of each
        wins): a staged content other than the row's original brings the original (from the row's
        first-version columns) and itself; a message new in the batch needs two contents staged. Runs
        before the merge, while the row's text is still the original's where it has no versions yet."""
        s = self.schema
        return f"""
WITH k AS (
  SELECT DISTINCT ON (s.chat_id, s.id_scope, s.message_id, s.content_hash)
         s.chat_id, s.id_scope, s.message_id, s.content_hash, s.text, s.media, s.edit_date, s.seq, s.observed_at,
         m.chat_id IS NULL OR m.content_hash IS NULL AS unseen
  FROM stage_messages s LEFT JOIN {s}.messages m USING (chat_id, id_scope, message_id)
  WHERE s.counts AND m.content_hash IS DISTINCT FROM s.content_hash
  ORDER BY s.chat_id, s.id_scope, s.message_id, s.content_hash, s.seq
), n AS (
  SELECT k.*, count(*) OVER (PARTITION BY chat_id, id_scope, message_id) AS contents FROM k
)
INSERT INTO {s}.message_versions (chat_id, id_scope, message_id, content_hash, text, media, edit_date, seq,
                                  observed_at)
SELECT m.chat_id, m.id_scope, m.message_id, m.content_hash, m.text, m.first_media, m.first_edit_date, m.first_seq,
       m.first_observed_at
FROM {s}.messages m JOIN (SELECT DISTINCT chat_id, id_scope, message_id FROM k WHERE NOT unseen) e
     USING (chat_id, id_scope, message_id)
UNION ALL
SELECT chat_id, id_scope, message_id, content_hash, text, media::jsonb, edit_date, seq, observed_at FROM n
WHERE NOT unseen OR contents > 1
ON CONFLICT DO NOTHING"""

    @property
    def insert_edits(self) -> str:
        """Record every edit date not seen before and count it in the message's edit_count."""
        s = self.schema
        return f"""
WITH ins AS (
  INSERT INTO {s}.message_edits (chat_id, id_scope, message_id, edit_date)
  SELECT DISTINCT chat_id, id_scope, message_id, edit_date FROM stage_messages
  WHERE edit_date IS NOT NULL AND counts
  ON CONFLICT DO NOTHING
  RETURNING chat_id, id_scope, message_id
)
UPDATE {s}.messages m SET edit_count = m.edit_count + c.n
FROM (SELECT chat_id, id_scope, message_id, count(*) AS n FROM ins GROUP BY 1, 2, 3) c
WHERE m.chat_id = c.chat_id AND m.id_scope = c.id_scope AND m.message_id = c.message_id"""

    @property
    def resolve_pending(self) -> list[str]:
        """Apply deletes that waited for their message (by chat key, and by account for non-channels)."""
        s = self.schema
        tomb, changes = _TOMB.format(d="r"), _TOMB_CHANGES.format(d="r")
        return [
            f"""
WITH r AS (DELETE FROM {s}.pending_chat_deletes p USING {s}.messages m
           WHERE m.chat_id = p.chat_id AND m.id_scope = '' AND m.message_id = p.message_id RETURNING p.*)
UPDATE {s}.messages m SET {tomb} FROM r
WHERE m.chat_id = r.chat_id AND m.id_scope = '' AND m.message_id = r.message_id AND {changes}""",
            f"""
WITH r AS (DELETE FROM {s}.pending_deletes p USING {s}.messages m
           WHERE m.id_scope = p.account AND m.id_scope <> '' AND m.message_id = p.message_id
           RETURNING p.*)
UPDATE {s}.messages m SET {tomb} FROM r
WHERE m.id_scope = r.account AND m.id_scope <> '' AND m.message_id = r.message_id AND {changes}""",
        ]

    @property
    def apply_deletes(self) -> list[str]:
        """Tombstone known messages; park deletes of unknown ones until their post arrives."""
        return [self.apply_chat_deletes, self.apply_account_deletes]

    @property
    def apply_chat_deletes(self) -> str:
        """``apply_deletes`` of channel messages (numbered per chat)."""
        s = self.schema
        tomb, changes = _TOMB.format(d="d"), _TOMB_CHANGES.format(d="d")
        keep_first = _KEEP_FIRST_DELETE
        return f"""
WITH d AS ({_chat_deletes("stage_deletes")}),
u AS (UPDATE {s}.messages m SET {tomb} FROM d
      WHERE m.chat_id = d.chat_id AND m.id_scope = '' AND m.message_id = d.message_id AND {changes}
      RETURNING 1)
INSERT INTO {s}.pending_chat_deletes AS p (chat_id, message_id, deleted_at, seq)
SELECT d.chat_id, d.message_id, d.deleted_at, d.seq FROM d
WHERE NOT EXISTS (SELECT 1 FROM {s}.messages m
                  WHERE m.chat_id = d.chat_id AND m.id_scope = '' AND m.message_id = d.message_id)
ON CONFLICT (chat_id, message_id) DO UPDATE SET {keep_first}"""

    @property
    def apply_account_deletes(self) -> str:
        """``apply_deletes`` of messages numbered per account (no chat id, or outside channels)."""
        s = self.schema
        tomb, changes = _TOMB.format(d="d"), _TOMB_CHANGES.format(d="d")
        keep_first = _KEEP_FIRST_DELETE
        return f"""
WITH d AS ({_account_deletes("stage_deletes")}),
u AS (UPDATE {s}.messages m SET {tomb} FROM d
      WHERE m.id_scope = d.account AND m.id_scope <> '' AND m.message_id = d.message_id AND {changes}
      RETURNING 1)
INSERT INTO {s}.pending_deletes AS p (account, message_id, deleted_at, seq)
SELECT d.account, d.message_id, d.deleted_at, d.seq FROM d
WHERE NOT EXISTS (SELECT 1 FROM {s}.messages m
                  WHERE m.id_scope = d.account AND m.id_scope <> '' AND m.message_id = d.message_id)
ON CONFLICT (account, message_id) DO UPDATE SET {keep_first}"""

    # A bulk load stages each message's first snapshot apart from its later ones (the staging helper
    # sees all of a chat's records in seq order). Messages with one snapshot go into the empty tables
    # as they are (no sort); the others are folded from their first and later snapshots
    # (docs/decisions/045-bulk-load-of-first-snapshots.md).

    @property
    def bulk_tombstones(self) -> str:
        """The deletes a partition's messages take as they are inserted (``_tombstone_joins``): its
        channel deletes by chat key, and every delete numbered per account (partition 0 staged them
        all, ``stage_account_deletes``), each with its earliest observation and record."""
        return f"""
CREATE TEMP TABLE stage_chat_tombs ON COMMIT DROP AS {_chat_deletes("stage_deletes")};
CREATE TEMP TABLE stage_account_tombs ON COMMIT DROP AS {_account_deletes("stage_account_deletes")};
ANALYZE stage_chat_tombs;
ANALYZE stage_account_tombs"""

    @property
    def bulk_single(self) -> str:
        """Messages whose first snapshot is their only one, into empty messages: what a batch of that
        snapshot gives (it counts, it is the original version, an edit date is its one edit)."""
        s = self.schema
        select_cols = ", ".join(f"f.{c}::jsonb" if c in _JSONB else f"f.{c}" for c in _CONTENT)
        # The joins in the order written: the planner underestimates the messages without a later
        # snapshot (their ids repeat across chats) and would hash them instead of the deletes.
        return f"""
CREATE TEMP TABLE stage_group_counts (chat_id int8, n int8, last_date timestamptz, last_seq int8)
ON COMMIT DROP;
SET LOCAL join_collapse_limit = 1;
WITH ins AS (
INSERT INTO {s}.messages (chat_id, id_scope, message_id, {", ".join(_CONTENT)}, reactions, reactions_seq, source,
                          first_seq, last_seq, edit_count, {", ".join(_FIRST_VERSION)}, {_TOMBSTONE_COLUMNS})
SELECT f.chat_id, f.id_scope, f.message_id, {select_cols}, f.reactions::jsonb, f.seq, f.first_source, f.seq,
       f.seq, (f.edit_date IS NOT NULL)::int, f.content_hash, f.edit_date, f.observed_at, f.media::jsonb,
       {_TOMBSTONE_VALUES}
FROM stage_firsts f {_tombstone_joins("f")}
WHERE {_NO_LATER}
RETURNING {_GROUP_RETURNING})
{_COUNT_GROUPS};
RESET join_collapse_limit"""

    @property
    def bulk_single_edits(self) -> str:
        """The edit dates of messages with one snapshot, into empty message_edits."""
        return f"""
INSERT INTO {self.schema}.message_edits (chat_id, id_scope, message_id, edit_date)
SELECT f.chat_id, f.id_scope, f.message_id, f.edit_date FROM stage_firsts f
WHERE f.edit_date IS NOT NULL AND {_NO_LATER}"""

    @property
    def stage_several(self) -> str:
        """The snapshots of messages with more than one, as the message stage of the statements below
        (a temporary table of the fold's transaction)."""
        return f"""
CREATE TEMP TABLE stage_messages ON COMMIT DROP AS
SELECT f.* FROM stage_firsts f WHERE NOT {_NO_LATER}
UNION ALL SELECT * FROM stage_later;
ANALYZE stage_messages"""

    # The messages with several snapshots: the same merge rules as the statements above specialised
    # to an empty target (plain inserts, no conflicts, no pending deletes).

    @property
    def bulk_versions(self) -> str:
        """Every distinct content (first sighting wins) of the staged messages that have more than
        one, into empty versions."""
        return f"""
WITH e AS (
  SELECT chat_id, id_scope, message_id FROM stage_messages WHERE counts GROUP BY chat_id, id_scope, message_id
  HAVING min(content_hash) <> max(content_hash)
)
INSERT INTO {self.schema}.message_versions (chat_id, id_scope, message_id, content_hash, text, media, edit_date,
                                            seq, observed_at)
SELECT DISTINCT ON (s.chat_id, s.id_scope, s.message_id, s.content_hash)
       s.chat_id, s.id_scope, s.message_id, s.content_hash, s.text, s.media::jsonb, s.edit_date, s.seq, s.observed_at
FROM stage_messages s JOIN e USING (chat_id, id_scope, message_id) WHERE s.counts
ORDER BY s.chat_id, s.id_scope, s.message_id, s.content_hash, s.seq"""

    @property
    def bulk_edits(self) -> str:
        """Every distinct edit date of the staged snapshots, into empty message_edits."""
        return f"""
INSERT INTO {self.schema}.message_edits (chat_id, id_scope, message_id, edit_date)
SELECT DISTINCT chat_id, id_scope, message_id, edit_date FROM stage_messages WHERE edit_date IS NOT NULL AND counts"""

    @property
    def bulk_messages(self) -> str:
        """The newest snapshot per key, with the first sighting and the edit count, into empty messages."""
        s = self.schema
        select_cols = ", ".join(f"w.{c}::jsonb" if c in _JSONB else f"w.{c}" for c in _CONTENT)
        # The first sighting (source, seq) is of any snapshot; the original version is the first
        # counted one, which differs only where a better reading outranked the first (fv).
        originals = ", ".join(
            f"CASE WHEN f.counts THEN f.{c} ELSE fv.{c} END" for c in _FIRST_VERSION
        )
        superseded = f"({_KEY}) IN (SELECT {_KEY} FROM f WHERE NOT f.counts) AND counts"
        return f"""
WITH w AS (
  SELECT DISTINCT ON (chat_id, id_scope, message_id) * FROM stage_messages WHERE counts
  ORDER BY chat_id, id_scope, message_id, coalesce(edit_date, '-infinity'::timestamptz) DESC, date DESC, seq DESC
), {_first_sighting("f", "true")}, {_first_sighting("fv", superseded)}, e AS (
  SELECT chat_id, id_scope, message_id, count(*) AS n FROM {s}.message_edits GROUP BY 1, 2, 3
), ins AS (
INSERT INTO {s}.messages (chat_id, id_scope, message_id, {", ".join(_CONTENT)}, reactions, reactions_seq, source,
                          first_seq, last_seq, edit_count, {", ".join(_FIRST_VERSION)}, {_TOMBSTONE_COLUMNS})
SELECT w.chat_id, w.id_scope, w.message_id, {select_cols}, w.reactions::jsonb, w.seq, f.source, f.seq,
       w.seq, coalesce(e.n, 0), {originals}, {_TOMBSTONE_VALUES}
FROM w JOIN f USING (chat_id, id_scope, message_id) LEFT JOIN fv USING (chat_id, id_scope, message_id)
LEFT JOIN e USING (chat_id, id_scope, message_id) {_tombstone_joins("w")}
RETURNING {_GROUP_RETURNING})
{_COUNT_GROUPS}"""

    @property
    def bulk_pending_chat_deletes(self) -> str:
        """The partition's channel deletes of messages it has not seen, parked (empty table)."""
        return f"""
INSERT INTO {self.schema}.pending_chat_deletes (chat_id, message_id, deleted_at, seq)
SELECT t.chat_id, t.message_id, t.deleted_at, t.seq FROM stage_chat_tombs t
WHERE NOT EXISTS (SELECT 1 FROM stage_firsts f
                  WHERE f.chat_id = t.chat_id AND f.id_scope = '' AND f.message_id = t.message_id)"""

    @property
    def bulk_groups(self) -> str:
        """Groups of the first snapshots, counted (telegram_groups is empty before) from what the two
        message inserts returned; a chat's account is its first message's."""
        s = self.schema
        return f"""
INSERT INTO {s}.telegram_groups (chat_id, kind, account, message_count, last_activity_at, last_seq)
SELECT g.chat_id, {_kind_of("g.chat_id")}, f.account, g.n, g.last_date, g.last_seq
FROM (SELECT chat_id, sum(n) AS n, max(last_date) AS last_date, max(last_seq) AS last_seq
      FROM stage_group_counts GROUP BY chat_id) g
JOIN (SELECT chat_id, min(seq) AS seq FROM stage_firsts GROUP BY chat_id) o USING (chat_id)
JOIN stage_firsts f ON f.chat_id = o.chat_id AND f.seq = o.seq"""

    @property
    def bulk_reactions(self) -> str:
        """Per message the newest staged reaction summary, where it is newer than the snapshot (the
        outcome of applying them one by one in seq order)."""
        return f"""
UPDATE {self.schema}.messages m SET reactions = r.reactions::jsonb, reactions_seq = r.seq
FROM (SELECT DISTINCT ON (chat_id, id_scope, message_id) * FROM stage_reactions
      ORDER BY chat_id, id_scope, message_id, seq DESC) r
WHERE m.chat_id = r.chat_id AND m.id_scope = r.id_scope AND m.message_id = r.message_id
  AND m.reactions_seq < r.seq AND m.last_seq < r.seq"""

    @property
    def update_reactions(self) -> str:
        """A newer reaction summary replaces the row's (never one older than the snapshot: a snapshot's own
        summary counts as of its seq, so the outcome does not depend on batch boundaries)."""
        return (
            f"UPDATE {self.schema}.messages SET reactions = %s::jsonb, reactions_seq = %s "
            "WHERE chat_id = %s AND id_scope = %s AND message_id = %s AND reactions_seq < %s "
            "AND last_seq < %s"
        )

    @property
    def update_counters(self) -> str:
        """Engagement counters reported after the row's snapshot replace its values (a None counter
        was not reported and keeps the value): per counter, the latest report after the snapshot."""
        return (
            f"UPDATE {self.schema}.messages SET views = coalesce(%s, views), "
            "forwards = coalesce(%s, forwards), replies = coalesce(%s, replies) "
            "WHERE chat_id = %s AND id_scope = %s AND message_id = %s AND last_seq < %s"
        )

    @property
    def update_media(self) -> str:
        """Where a message's media was stored (for a message seen before the event, as in seq order)."""
        return (
            f"UPDATE {self.schema}.messages SET media_sha256 = %s, media_path = %s "
            "WHERE chat_id = %s AND id_scope = %s AND message_id = %s AND first_seq < %s"
        )

    def _groups_upsert(self, *, discovered: bool) -> str:
        """Upsert a chat's metadata where it is newer by (Telegram time, seq) than the row's (rule
        "chat metadata" of projector/rules.py); a discovery also (re)activates the chat, in seq
        order, and keeps its first date."""
        newer_meta = (
            "(EXCLUDED.meta_at, EXCLUDED.meta_seq) > (coalesce(g.meta_at, '-infinity'), g.meta_seq)"
        )
        newer_title = (
            "EXCLUDED.title IS NOT NULL AND "
            "(EXCLUDED.title_at, EXCLUDED.title_seq) > (coalesce(g.title_at, '-infinity'), g.title_seq)"
        )
        meta = ", ".join(
            f"{c} = CASE WHEN {newer_meta} THEN EXCLUDED.{c} ELSE g.{c} END"
            for c in (
                "kind",
                "username",
                "member_count",
                "forum",
                "account",
                "meta_at",
                "meta_seq",
            )
        )
        # Rule "migration link": only an update that names a link replaces the row's, if newer.
        newer_link = (
            "EXCLUDED.migrated_to_chat_id IS NOT NULL AND (EXCLUDED.migrated_at, "
            "EXCLUDED.migrated_seq) > (coalesce(g.migrated_at, '-infinity'), g.migrated_seq)"
        )
        link = ", ".join(
            f"{c} = CASE WHEN {newer_link} THEN EXCLUDED.{c} ELSE g.{c} END"
            for c in ("migrated_to_chat_id", "migrated_at", "migrated_seq")
        )
        # Rule "chat photo": likewise, an update that names a photo.
        newer_photo = (
            "EXCLUDED.photo_id IS NOT NULL AND (EXCLUDED.photo_at, EXCLUDED.photo_seq) > "
            "(coalesce(g.photo_at, '-infinity'), g.photo_seq)"
        )
        photo = ", ".join(
            f"{c} = CASE WHEN {newer_photo} THEN EXCLUDED.{c} ELSE g.{c} END"
            for c in ("photo_id", "photo_at", "photo_seq")
        )
        title = ", ".join(
            f"{c} = CASE WHEN {newer_title} THEN EXCLUDED.{c} ELSE g.{c} END"
            for c in ("title", "title_at", "title_seq")
        )
        later = "g.presence_seq < EXCLUDED.presence_seq"
        presence = (
            f", is_active = CASE WHEN {later} THEN true ELSE g.is_active END, "
            f"left_at = CASE WHEN {later} THEN NULL ELSE g.left_at END, "
            "presence_seq = GREATEST(g.presence_seq, EXCLUDED.presence_seq), "
            "discovered_at = coalesce(g.discovered_at, EXCLUDED.discovered_at)"
            if discovered
            else ""
        )
        discovered_at, presence_seq = ("%(at)s", "%(seq)s") if discovered else ("NULL", "0")
        return (
            f"INSERT INTO {self.schema}.telegram_groups AS g (chat_id, kind, title, username, "
            "member_count, forum, migrated_to_chat_id, migrated_at, migrated_seq, photo_id, "
            "photo_at, photo_seq, account, is_active, discovered_at, meta_at, meta_seq, title_at, "
            "title_seq, presence_seq, last_seq) VALUES "
            "(%(chat_id)s, %(kind)s, %(title)s, %(username)s, %(member_count)s, %(forum)s, "
            "%(migrated_to)s, %(link_at)s, %(link_seq)s, %(photo_id)s, %(photo_at)s, "
            "%(photo_seq)s, "
            f"%(account)s, true, {discovered_at}, %(info_at)s, %(seq)s, %(title_at)s, %(title_seq)s, "
            f"{presence_seq}, %(seq)s) "
            f"ON CONFLICT (chat_id) DO UPDATE SET {meta}, {title}, {link}, {photo}, "
            f"last_seq = GREATEST(g.last_seq, EXCLUDED.last_seq), updated_at = now(){presence}"
        )

    def group_op(self, op: GroupOpKind) -> list[str]:
        """The statements of one chat metadata / crawler status change (named parameters)."""
        s = self.schema
        last_msg = f"(SELECT max(date) FROM {s}.messages WHERE chat_id = %(chat_id)s)"

        def status(cols: str, vals: str, sets: str, guard: str = "c.status_seq < %(seq)s") -> str:
            # A row created here takes the last message date from messages, so the result does not
            # depend on whether the messages came in an earlier batch or a later one.
            return (
                f"INSERT INTO {s}.crawler_status AS c (chat_id, account, last_message_at, {cols}) "
                f"VALUES (%(chat_id)s, %(account)s, {last_msg}, {vals}) "
                f"ON CONFLICT (chat_id) DO UPDATE SET {sets}, updated_at = now() WHERE {guard}"
            )

        if op == "discovered":
            return [
                self._groups_upsert(discovered=True),
                status(
                    "status, status_seq",
                    "'initializing', %(seq)s",
                    "account = EXCLUDED.account, status_seq = EXCLUDED.status_seq, "
                    "status = CASE WHEN c.status = 'left' THEN 'initializing' ELSE c.status END",
                ),
            ]
        if op == "updated":
            return [self._groups_upsert(discovered=False)]
        if op == "title":
            # A title-change message counts by its date (rule "chat metadata").
            return [
                f"UPDATE {s}.telegram_groups SET title = %(title)s, title_at = %(at)s, "
                "title_seq = %(seq)s, updated_at = now() WHERE chat_id = %(chat_id)s "
                "AND (coalesce(title_at, '-infinity'), title_seq) < (%(at)s, %(seq)s)"
            ]
        if op == "photo":
            # A photo-change message counts by its date (rule "chat photo"; None: removed).
            return [
                f"UPDATE {s}.telegram_groups SET photo_id = %(photo)s, photo_at = %(at)s, "
                "photo_seq = %(seq)s, updated_at = now() WHERE chat_id = %(chat_id)s "
                "AND (coalesce(photo_at, '-infinity'), photo_seq) < (%(at)s, %(seq)s)"
            ]
        if op == "migrated":
            # A migration service message links the basic group (rule "migration link"), which
            # gets a row if it has none (a chat known only from the link).
            kind = _kind_of("%(chat_id)s::bigint")
            return [
                f"INSERT INTO {s}.telegram_groups AS g (chat_id, kind, migrated_to_chat_id, "
                f"migrated_at, migrated_seq) VALUES (%(chat_id)s, {kind}, %(to)s, %(at)s, %(seq)s) "
                "ON CONFLICT (chat_id) DO UPDATE SET migrated_to_chat_id = EXCLUDED.migrated_to_chat_id, "
                "migrated_at = EXCLUDED.migrated_at, migrated_seq = EXCLUDED.migrated_seq, "
                "updated_at = now() WHERE (EXCLUDED.migrated_at, EXCLUDED.migrated_seq) > "
                "(coalesce(g.migrated_at, '-infinity'), g.migrated_seq)"
            ]
        if op == "left":
            # A leave creates the row if nothing else did yet (a chat known only from its leave).
            kind = _kind_of("%(chat_id)s::bigint")
            return [
                f"INSERT INTO {s}.telegram_groups AS g (chat_id, kind, is_active, left_at, presence_seq) "
                f"VALUES (%(chat_id)s, {kind}, false, %(at)s, %(seq)s) "
                "ON CONFLICT (chat_id) DO UPDATE SET is_active = false, left_at = EXCLUDED.left_at, "
                "presence_seq = EXCLUDED.presence_seq, updated_at = now() "
                "WHERE g.presence_seq < EXCLUDED.presence_seq",
                status(
                    "status, status_seq",
                    "'left', %(seq)s",
                    "status = 'left', status_seq = %(seq)s",
                ),
            ]
        if op == "backfill_started":
            return [
                status(
                    "status, backfill_total, status_seq",
                    "'initializing', %(total)s, %(seq)s",
                    "status = 'initializing', backfill_total = coalesce(%(total)s, c.backfill_total), "
                    "status_seq = %(seq)s",
                )
            ]
        if op == "backfill_progress":
            return [
                status(
                    "backfill_fetched, backfill_total, status_seq",
                    "%(fetched)s, %(total)s, %(seq)s",
                    "backfill_fetched = %(fetched)s, backfill_total = coalesce(%(total)s, c.backfill_total), "
                    "status_seq = %(seq)s",
                )
            ]
        if op == "backfill_completed":
            return [
                status(
                    "status, backfill_fetched, backfill_completed_at, status_seq",
                    "'active', %(fetched)s, %(at)s, %(seq)s",
                    "status = 'active', backfill_fetched = %(fetched)s, backfill_completed_at = %(at)s, "
                    "status_seq = %(seq)s",
                )
            ]
        # Rule "recovery" (projector/rules.py): a gap-fill or catch-up pass ends an error status.
        recovered = (
            "status = CASE WHEN c.backfill_completed_at IS NULL THEN 'initializing' ELSE 'active' END, "
            "status_seq = %(seq)s"
        )
        recovery_guard = "c.status = 'error' AND c.status_seq < %(seq)s"
        if op == "gapfill":
            return [
                status(
                    "last_gapfill_at, gapfill_new, gapfill_seq",
                    "%(at)s, %(new)s, %(seq)s",
                    "last_gapfill_at = GREATEST(c.last_gapfill_at, %(at)s), "
                    "gapfill_new = c.gapfill_new + %(new)s, gapfill_seq = %(seq)s",
                    guard="c.gapfill_seq < %(seq)s",
                ),
                status("status_seq", "%(seq)s", recovered, guard=recovery_guard),
            ]
        if op == "recovered":
            return [status("status_seq", "%(seq)s", recovered, guard=recovery_guard)]
        if op == "flood":
            return [
                status(
                    "last_flood_wait_s, last_flood_wait_at",
                    "%(seconds)s, %(at)s",
                    "last_flood_wait_s = %(seconds)s, last_flood_wait_at = %(at)s",
                    guard="c.last_flood_wait_at IS NULL OR c.last_flood_wait_at <= %(at)s",
                )
            ]
        if op == "error":  # the last kind
            return [
                status(
                    "status, last_error, last_error_at, last_error_kind, status_seq",
                    "'error', %(error)s, %(at)s, %(kind)s, %(seq)s",
                    "status = 'error', last_error = %(error)s, last_error_at = %(at)s, "
                    "last_error_kind = %(kind)s, status_seq = %(seq)s",
                )
            ]
        assert_never(op)

    @property
    def select_checkpoint(self) -> str:
        """Lock and read this projection's checkpoint row."""
        return f"SELECT seq FROM {self.checkpoint_schema}.projection_checkpoints WHERE name = %s FOR UPDATE"

    @property
    def ensure_checkpoint(self) -> str:
        """Create the checkpoint row if missing."""
        return (
            f"INSERT INTO {self.checkpoint_schema}.projection_checkpoints (name) VALUES (%s) "
            "ON CONFLICT (name) DO NOTHING"
        )

    @property
    def update_checkpoint(self) -> str:
        """Advance the checkpoint in the batch's transaction."""
        return (
            f"UPDATE {self.checkpoint_schema}.projection_checkpoints SET seq = %s, "
            "events_applied = events_applied + %s, updated_at = now() WHERE name = %s"
        )
