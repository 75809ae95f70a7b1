"""Merge rules of the Postgres projection on real nats-server + Postgres."""

from __future__ import annotations

import psycopg

from eventlog import EventLog
from schemas.events import ChatDiscovered, ChatInfo, ChatLeft
from tests.factories import CHAN, T0, deleted, edited, posted
from tests.projector.conftest import content_hash, project_to_end


def one(url: str, query: str, *params: object) -> tuple[object, ...]:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return tuple(row)


async def test_edit_before_post_keeps_the_edit(event_log: EventLog, migrated_url: str) -> None:
    await event_log.append_many([edited(CHAN, 1, "v2"), posted(CHAN, 1, text="v1", date=T0)])
    await project_to_end(event_log, migrated_url)
    assert one(
        migrated_url, "SELECT text, edit_count, source, first_seq, last_seq FROM messages"
    ) == ("v2", 1, "live", 1, 1)


async def test_delete_before_post_leaves_a_tombstone(
    event_log: EventLog, migrated_url: str
) -> None:
    await event_log.append_many([deleted(CHAN, 1), posted(CHAN, 1, text="late")])
    await project_to_end(event_log, migrated_url)
    assert one(migrated_url, "SELECT text, is_deleted, deleted_seq FROM messages") == (
        "late",
        True,
        1,
    )
    assert one(migrated_url, "SELECT count(*) FROM pending_chat_deletes") == (0,)


async def test_duplicate_posts_from_three_sources_give_one_row(
    event_log: EventLog, migrated_url: str
) -> None:
    await event_log.append_many([posted(CHAN, 1, text="a", source="live")])
    await event_log.append_many([posted(CHAN, 2, text="b", source="gapfill")])
    # Same facts seen again by gap-fill and an import: distinct records in the log (dedup window passed).
    again = [
        posted(CHAN, 1, text="a", source="gapfill"),
        posted(CHAN, 1, text="a", source="import"),
    ]
    again = [
        e.__class__(
            **{**{f: getattr(e, f) for f in e.__struct_fields__}, "event_id": f"{e.event_id}-{i}"}
        )
        for i, e in enumerate(again)
    ]
    await event_log.append_many(again)
    await project_to_end(event_log, migrated_url)
    assert one(migrated_url, "SELECT count(*), min(source) FROM messages WHERE message_id = 1") == (
        1,
        "live",
    )
    assert one(migrated_url, "SELECT first_seq, edit_count FROM messages WHERE message_id = 1") == (
        1,
        0,
    )
    assert one(migrated_url, "SELECT message_count FROM telegram_groups") == (2,)


async def test_delete_without_chat_id_resolves_by_account(
    event_log: EventLog, migrated_url: str
) -> None:
    group = -4242
    await event_log.append_many(
        [posted(group, 7, account="main"), deleted(None, 7, account="main")]
    )
    await event_log.append_many([deleted(None, 8, account="main")])
    await event_log.append_many([posted(group, 8, account="main")])
    await project_to_end(event_log, migrated_url, batch_size=1)
    assert one(migrated_url, "SELECT count(*) FROM messages WHERE is_deleted") == (2,)
    assert one(migrated_url, "SELECT count(*) FROM pending_deletes") == (0,)


async def test_older_snapshot_after_newer_changes_nothing(
    event_log: EventLog, migrated_url: str
) -> None:
    await event_log.append_many(
        [
            posted(CHAN, 1, text="v1", date=T0),
            edited(CHAN, 1, "v3", minutes=9),
            edited(CHAN, 1, "v2", minutes=3),
        ]
    )
    await project_to_end(event_log, migrated_url)
    assert one(migrated_url, "SELECT text, edit_count, last_seq FROM messages") == ("v3", 2, 2)


async def test_applying_the_log_twice_gives_the_same_tables(
    event_log: EventLog, migrated_url: str
) -> None:
    await event_log.append_many(
        [posted(CHAN, i, text=f"m{i}") for i in range(1, 50)]
        + [edited(CHAN, 3, "x"), deleted(CHAN, 4), deleted(None, 9)]
    )
    await project_to_end(event_log, migrated_url, batch_size=7)
    first = content_hash(migrated_url)
    with psycopg.connect(migrated_url) as conn:
        conn.execute("UPDATE projection_checkpoints SET seq = 0 WHERE name = 'postgres'")
    await project_to_end(event_log, migrated_url, batch_size=13)
    assert content_hash(migrated_url) == first


async def test_a_left_group_shows_left_until_it_is_discovered_again(
    event_log: EventLog, migrated_url: str
) -> None:
    def discovered(event_id: str) -> ChatDiscovered:
        chat = ChatInfo(chat_id=CHAN, kind="supergroup", title="g")
        return ChatDiscovered(
            event_id=event_id, account="main", observed_at=T0, source="live", chat=chat
        )

    left = ChatLeft(event_id="l1", account="main", observed_at=T0, source="live", chat_id=CHAN)
    await event_log.append_many([discovered("d1"), left])
    await project_to_end(event_log, migrated_url)
    status = "SELECT status FROM crawler_status WHERE chat_id = %s"
    assert one(migrated_url, status, CHAN) == ("left",)
    await event_log.append_many([discovered("d2")])
    await project_to_end(event_log, migrated_url)
    assert one(migrated_url, status, CHAN) == ("initializing",)
