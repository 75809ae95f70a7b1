"""Rows as the projector writes them, inserted with SQL for API tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg

BASE_DATE = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def insert_group(
    url: str,
    chat_id: int,
    *,
    title: str = "Group",
    account: str = "main",
    messages: int = 0,
    status: str | None = "active",
    backfill_fetched: int = 0,
    backfill_total: int | None = None,
    last_error: str | None = None,
) -> None:
    """A telegram_groups row and (unless ``status`` is None) its crawler_status row."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO telegram_groups (chat_id, title, account, message_count, discovered_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            (chat_id, title, account, messages, BASE_DATE),
        )
        if status is not None:
            conn.execute(
                "INSERT INTO crawler_status (chat_id, account, status, backfill_fetched, backfill_total, "
                "last_error, last_error_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    chat_id,
                    account,
                    status,
                    backfill_fetched,
                    backfill_total,
                    last_error,
                    BASE_DATE if last_error else None,
                ),
            )


def insert_messages(
    url: str,
    chat_id: int,
    ids: range | list[int],
    *,
    text: str = "message {id}",
    deleted: set[int] | None = None,
) -> None:
    """Messages with the given ids (``deleted`` ones tombstoned)."""
    deleted = deleted or set()
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO messages (chat_id, message_id, account, sender_id, date, text, source, first_seq, last_seq, "
            "observed_at, is_deleted, deleted_at) VALUES (%s, %s, 'main', 42, %s, %s, 'live', %s, %s, %s, %s, %s)",
            [
                (
                    chat_id,
                    i,
                    BASE_DATE + timedelta(minutes=i),
                    text.format(id=i),
                    i,
                    i,
                    BASE_DATE,
                    i in deleted,
                    BASE_DATE if i in deleted else None,
                )
                for i in ids
            ],
        )


def insert_version(
    url: str, chat_id: int, message_id: int, *, text: str, seq: int, edited: bool
) -> None:
    """One message_versions row."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO message_versions (chat_id, message_id, content_hash, text, edit_date, seq, "
            "observed_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                chat_id,
                message_id,
                f"h{seq}",
                text,
                BASE_DATE + timedelta(hours=seq) if edited else None,
                seq,
                BASE_DATE,
            ),
        )


def set_checkpoint(url: str, name: str, seq: int) -> None:
    """Upsert a projection checkpoint."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO projection_checkpoints (name, seq, events_applied) VALUES (%s, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, events_applied = excluded.events_applied",
            (name, seq, seq),
        )


def insert_dead_letter(
    url: str, *, projection: str, seq: int, resolved: bool = False, error: str = "boom"
) -> int:
    """A failed_messages row; its id."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO failed_messages (projection, seq, payload, error, resolved) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (projection, seq, b"{}", error, resolved),
        ).fetchone()
        assert row is not None
        return int(row[0])


def insert_user(url: str, *, role: str = "user", email: str | None = None) -> uuid.UUID:
    """A users row; its id."""
    user_id = uuid.uuid4()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (id, email, role) VALUES (%s, %s, %s)",
            (user_id, email or f"{user_id.hex[:6]}@example.org", role),
        )
    return user_id
