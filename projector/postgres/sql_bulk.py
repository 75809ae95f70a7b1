"""The bulk fold's statements: a rebuild's first load folds its stages into empty tables with
set-based inserts (``projector.postgres.bulk``) instead of the live merge."""

from __future__ import annotations

from projector.postgres.sql import PgSql
from projector.postgres.sql_fragments import (
    CONTENT,
    COUNT_GROUPS,
    FIRST_VERSION,
    GROUP_RETURNING,
    KEY,
    NO_LATER,
    TOMBSTONE_COLUMNS,
    TOMBSTONE_VALUES,
    account_deletes,
    chat_deletes,
    content_of,
    first_sighting,
    kind_of,
    tombstone_joins,
)


class BulkSql(PgSql):
    """The live statements of ``PgSql`` and the bulk fold's."""

    @property
    def bulk_tombstones(self) -> str:
        """The deletes a partition's messages take as they are inserted (``tombstone_joins``): its
        channel deletes by chat key, and every delete numbered per account (partition 0 staged them
        all, ``stage_account_deletes``), each with its earliest observation and record."""
        return f"""
CREATE TEMP TABLE stage_chat_tombs ON COMMIT DROP AS {chat_deletes("stage_deletes")};
CREATE TEMP TABLE stage_account_tombs ON COMMIT DROP AS {account_deletes("stage_account_deletes")};
ANALYZE stage_chat_tombs;
ANALYZE stage_account_tombs"""

    @property
    def bulk_single(self) -> str:
        """Messages whose first snapshot is their only one, into empty messages: what a batch of that
        snapshot gives (it counts, it is the original version, an edit date is its one edit)."""
        s = self.schema
        select_cols = content_of("f")
        # The joins in the order written: the planner underestimates the messages without a later
        # snapshot (their ids repeat across chats) and would hash them instead of the deletes.
        return f"""
CREATE TEMP TABLE stage_group_counts (chat_id int8, n int8, last_date timestamptz, last_seq int8)
ON COMMIT DROP;
SET LOCAL join_collapse_limit = 1;
WITH ins AS (
INSERT INTO {s}.messages (chat_id, id_scope, message_id, {", ".join(CONTENT)}, reactions, reactions_seq, source,
                          first_seq, last_seq, edit_count, {", ".join(FIRST_VERSION)}, {TOMBSTONE_COLUMNS})
SELECT f.chat_id, f.id_scope, f.message_id, {select_cols}, f.reactions::jsonb, f.seq, f.first_source, f.seq,
       f.seq, (f.edit_date IS NOT NULL)::int, f.content_hash, f.edit_date, f.observed_at, f.media::jsonb,
       {TOMBSTONE_VALUES}
FROM stage_firsts f {tombstone_joins("f")}
WHERE {NO_LATER}
RETURNING {GROUP_RETURNING})
{COUNT_GROUPS};
RESET join_collapse_limit"""

    @property
    def bulk_single_edits(self) -> str:
        """The edit dates of messages with one snapshot, into empty message_edits."""
        return f"""
INSERT INTO {self.schema}.message_edits (chat_id, id_scope, message_id, edit_date)
SELECT f.chat_id, f.id_scope, f.message_id, f.edit_date FROM stage_firsts f
WHERE f.edit_date IS NOT NULL AND {NO_LATER}"""

    @property
    def stage_several(self) -> str:
        """The snapshots of messages with more than one, as the message stage of the statements below
        (a temporary table of the fold's transaction)."""
        return f"""
CREATE TEMP TABLE stage_messages ON COMMIT DROP AS
SELECT f.* FROM stage_firsts f WHERE NOT {NO_LATER}
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
        select_cols = content_of("w")
        # The first sighting (source, seq) is of any snapshot; the original version is the first
        # counted one, which differs only where a better reading outranked the first (fv).
        originals = ", ".join(
            f"CASE WHEN f.counts THEN f.{c} ELSE fv.{c} END" for c in FIRST_VERSION
        )
        superseded = f"({KEY}) IN (SELECT {KEY} FROM f WHERE NOT f.counts) AND counts"
        return f"""
WITH w AS (
  SELECT DISTINCT ON (chat_id, id_scope, message_id) * FROM stage_messages WHERE counts
  ORDER BY chat_id, id_scope, message_id, coalesce(edit_date, '-infinity'::timestamptz) DESC, date DESC, seq DESC
), {first_sighting("f", "true")}, {first_sighting("fv", superseded)}, e AS (
  SELECT chat_id, id_scope, message_id, count(*) AS n FROM {s}.message_edits GROUP BY 1, 2, 3
), ins AS (
INSERT INTO {s}.messages (chat_id, id_scope, message_id, {", ".join(CONTENT)}, reactions, reactions_seq, source,
                          first_seq, last_seq, edit_count, {", ".join(FIRST_VERSION)}, {TOMBSTONE_COLUMNS})
SELECT w.chat_id, w.id_scope, w.message_id, {select_cols}, w.reactions::jsonb, w.seq, f.source, f.seq,
       w.seq, coalesce(e.n, 0), {originals}, {TOMBSTONE_VALUES}
FROM w JOIN f USING (chat_id, id_scope, message_id) LEFT JOIN fv USING (chat_id, id_scope, message_id)
LEFT JOIN e USING (chat_id, id_scope, message_id) {tombstone_joins("w")}
RETURNING {GROUP_RETURNING})
{COUNT_GROUPS}"""

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
SELECT g.chat_id, {kind_of("g.chat_id")}, f.account, g.n, g.last_date, g.last_seq
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
