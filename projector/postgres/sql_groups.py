"""The statements of chat metadata and crawler status changes (rules "chat metadata", "migration
link", "chat photo" and the crawler status of ``projector/rules.py``)."""

from __future__ import annotations

from typing import assert_never

from projector.postgres.rows import GroupOpKind
from projector.postgres.sql_fragments import kind_of


def _groups_upsert(schema: str, *, discovered: bool) -> str:
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
        f"INSERT INTO {schema}.telegram_groups AS g (chat_id, kind, title, username, "
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


def group_statements(schema: str, op: GroupOpKind) -> list[str]:
    """The statements of one chat metadata / crawler status change (named parameters)."""
    s = schema
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
            _groups_upsert(schema, discovered=True),
            status(
                "status, status_seq",
                "'initializing', %(seq)s",
                "account = EXCLUDED.account, status_seq = EXCLUDED.status_seq, "
                "status = CASE WHEN c.status = 'left' THEN 'initializing' ELSE c.status END",
            ),
        ]
    if op == "updated":
        return [_groups_upsert(schema, discovered=False)]
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
        kind = kind_of("%(chat_id)s::bigint")
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
        kind = kind_of("%(chat_id)s::bigint")
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
