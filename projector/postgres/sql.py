"""The Postgres projection's SQL, built once per target schema (live ``public`` or a rebuild schema).

The statements implement the rules of ``projector/rules.py`` (docs/decisions/018 to 021); the contract
test (``tests/contract``) holds the incremental merge and the bulk fold to them."""

from __future__ import annotations

from dataclasses import dataclass

from projector.postgres.rows import (
    DELETE_STAGE_COLUMNS,
    MESSAGE_STAGE_COLUMNS,
    REACTION_STAGE_COLUMNS,
    GroupOpKind,
)
from projector.postgres.sql_fragments import (
    CONTENT,
    FIRST_SIGHTING,
    FIRST_VERSION,
    KEEP_FIRST_DELETE,
    KEY,
    KIND,
    NEWER,
    TOMB,
    TOMB_CHANGES,
    account_deletes,
    chat_deletes,
    content_of,
)
from projector.postgres.sql_groups import group_statements


def _stage_ddl(name: str, columns: tuple[tuple[str, str], ...]) -> str:
    cols = ", ".join(f"{c} {t}" for c, t in columns)
    return f"CREATE TEMP TABLE IF NOT EXISTS {name} ({cols}) ON COMMIT DELETE ROWS"


@dataclass(frozen=True)
class PgSql:
    """The live projection's statements for tables in ``schema`` and checkpoints in
    ``checkpoint_schema`` (the bulk fold's are ``sql_bulk.BulkSql``'s, chat changes ``sql_groups``')."""

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
        select_cols = content_of("s")
        sets = ",\n      ".join(
            f"{c} = CASE WHEN {NEWER} THEN EXCLUDED.{c} ELSE m.{c} END" for c in CONTENT
        )
        # content_hash NULL: the row's reading was superseded (supersede_readings), so the
        # original version is the stage's first counted snapshot.
        firsts = ",\n      ".join(
            f"{c} = CASE WHEN EXCLUDED.first_seq < m.first_seq OR m.content_hash IS NULL "
            f"THEN EXCLUDED.{c} ELSE m.{c} END"
            for c in FIRST_VERSION
        )
        return f"""
WITH s AS (
  SELECT DISTINCT ON (chat_id, id_scope, message_id) * FROM stage_messages WHERE counts
  ORDER BY chat_id, id_scope, message_id, coalesce(edit_date, '-infinity'::timestamptz) DESC, date DESC,
           seq DESC
), {FIRST_SIGHTING}, up AS (
  INSERT INTO {s}.messages AS m (chat_id, id_scope, message_id, {", ".join(CONTENT)}, reactions, reactions_seq,
                                 source, first_seq, last_seq, {", ".join(FIRST_VERSION)})
  SELECT s.chat_id, s.id_scope, s.message_id, {select_cols}, s.reactions::jsonb, s.seq, s.first_source, s.first_seq,
         s.seq, {", ".join(f"f.{c}" for c in FIRST_VERSION)}
  FROM s JOIN f USING (chat_id, id_scope, message_id)
  ON CONFLICT (chat_id, id_scope, message_id) DO UPDATE SET
      {sets},
      {firsts},
      reactions = CASE WHEN {NEWER} AND EXCLUDED.last_seq > m.reactions_seq THEN EXCLUDED.reactions
                       ELSE m.reactions END,
      reactions_seq = CASE WHEN {NEWER} AND EXCLUDED.last_seq > m.reactions_seq THEN EXCLUDED.last_seq
                           ELSE m.reactions_seq END,
      last_seq = CASE WHEN {NEWER} THEN EXCLUDED.last_seq ELSE m.last_seq END,
      source = CASE WHEN EXCLUDED.first_seq < m.first_seq THEN EXCLUDED.source ELSE m.source END,
      first_seq = LEAST(m.first_seq, EXCLUDED.first_seq)
  WHERE {NEWER} OR EXCLUDED.first_seq < m.first_seq
  RETURNING m.chat_id, m.date, m.last_seq, (m.xmax = 0) AS inserted
), agg AS (
  SELECT chat_id, count(*) FILTER (WHERE inserted) AS n, max(date) AS last_date, max(last_seq) AS last_seq
  FROM up GROUP BY chat_id
), firsts AS (
  SELECT DISTINCT ON (chat_id) chat_id, account FROM stage_messages ORDER BY chat_id, seq
), g AS (
  INSERT INTO {s}.telegram_groups AS g (chat_id, kind, account, message_count, last_activity_at, last_seq)
  SELECT chat_id, {KIND}, f.account, n, last_date, last_seq FROM agg JOIN firsts f USING (chat_id)
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
  SELECT DISTINCT ON ({KEY}) {KEY}, seq FROM stage_messages
  WHERE ({KEY}) IN (SELECT {KEY} FROM stage_messages WHERE date_rank < 2)
  ORDER BY {KEY}, date_rank DESC, seq DESC
)
UPDATE stage_messages s SET counts = false
FROM t LEFT JOIN {s}.messages m USING ({KEY})
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
  SELECT DISTINCT {KEY} FROM stage_messages s JOIN {s}.messages m USING ({KEY})
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
        tomb, changes = TOMB.format(d="r"), TOMB_CHANGES.format(d="r")
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
        tomb, changes = TOMB.format(d="d"), TOMB_CHANGES.format(d="d")
        keep_first = KEEP_FIRST_DELETE
        return f"""
WITH d AS ({chat_deletes("stage_deletes")}),
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
        tomb, changes = TOMB.format(d="d"), TOMB_CHANGES.format(d="d")
        keep_first = KEEP_FIRST_DELETE
        return f"""
WITH d AS ({account_deletes("stage_deletes")}),
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

    def group_op(self, op: GroupOpKind) -> list[str]:
        """The statements of one chat metadata / crawler status change (named parameters)."""
        return group_statements(self.schema, op)

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
