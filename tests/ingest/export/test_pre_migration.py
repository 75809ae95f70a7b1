"""A supergroup's history from before it was a basic group: Desktop exports those messages with ids
shifted by -1,000,000,000; they land, under the basic group with their own ids when
``--migrated-from`` names it, and dedupe against the same messages seen live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from eventlog import EventLog, Record
from ingest.export import ExportError, ExportImporter, ImportProgress
from schemas.events import ChatUpdated, MessagePosted
from tests.helpers import posted
from tests.ingest.export.exports import account, msg, service, single_chat, write
from tests.ingest.export.log_sink import LogSink
from tests.projector.conftest import project_to_end

SUPERGROUP = -1001730156619
BASIC = -4242
SHIFT = -1_000_000_000


def migrated_export(tmp_path: Path) -> Path:
    """Basic group messages 1-3 (shifted), then the supergroup's own 1-2."""
    return write(
        tmp_path / "result.json",
        single_chat(
            [
                msg(SHIFT + 1, "before 1"),
                msg(SHIFT + 2, "before 2", reply_to_message_id=SHIFT + 1),
                service(SHIFT + 3, "migrate_to_supergroup"),
                service(1, "migrate_from_group", title="Old basic"),
                msg(2, "after", reply_to_message_id=1),
            ]
        ),
    )


async def run(log: EventLog, path: Path, **kwargs: Any) -> ImportProgress:
    return await ExportImporter(log=log, sink=LogSink(log), account="main", **kwargs).run(path)


async def messages(log: EventLog) -> dict[tuple[int | None, int], MessagePosted]:
    out: dict[tuple[int | None, int], MessagePosted] = {}
    async for batch in log.read():
        for r in batch:
            assert isinstance(r, Record)
            if isinstance(r.event, MessagePosted):
                out[(r.event.chat_id, r.event.message.message_id)] = r.event
    return out


async def test_pre_migration_messages_land_under_the_supergroup_without_a_basic_group_id(
    event_log: EventLog, tmp_path: Path
) -> None:
    progress = await run(event_log, migrated_export(tmp_path))
    assert (progress.imported, progress.skipped, progress.pre_migration) == (5, 0, 3)
    assert any("3 messages" in w and "--migrated-from" in w for w in progress.warnings)
    assert sorted(await messages(event_log)) == [
        (SUPERGROUP, SHIFT + 1),
        (SUPERGROUP, SHIFT + 2),
        (SUPERGROUP, SHIFT + 3),
        (SUPERGROUP, 1),
        (SUPERGROUP, 2),
    ]


async def test_migrated_from_files_them_under_the_basic_group_with_their_own_ids(
    event_log: EventLog, tmp_path: Path
) -> None:
    await run(event_log, migrated_export(tmp_path), migrated_from=BASIC)
    found = await messages(event_log)
    assert sorted(found) == [(SUPERGROUP, 1), (SUPERGROUP, 2), (BASIC, 1), (BASIC, 2), (BASIC, 3)]
    reply = found[(BASIC, 2)].message.reply_to
    assert reply is not None and reply.message_id == 1  # within the basic group's numbering
    own = found[(SUPERGROUP, 2)].message.reply_to
    assert own is not None and own.message_id == 1


async def test_migrated_from_links_the_basic_group_to_the_supergroup(
    event_log: EventLog, tmp_path: Path
) -> None:
    await run(event_log, migrated_export(tmp_path), migrated_from=BASIC)
    links = [
        r.event.chat
        async for batch in event_log.read()
        for r in batch
        if isinstance(r, Record) and isinstance(r.event, ChatUpdated)
    ]
    assert [(c.chat_id, c.kind, c.title, c.migrated_to) for c in links] == [
        (BASIC, "group", "Old basic", SUPERGROUP)
    ]


async def test_pre_migration_messages_seen_live_are_already_present(
    event_log: EventLog, tmp_path: Path
) -> None:
    await event_log.append(posted(BASIC, 2, text="before 2", account="main"))
    progress = await run(event_log, migrated_export(tmp_path), migrated_from=BASIC)
    assert (progress.imported, progress.already_present) == (4, 1)
    again = await run(event_log, migrated_export(tmp_path), migrated_from=BASIC)
    assert (again.imported, again.already_present) == (0, 5)


async def test_migrated_from_needs_chat_id_in_a_full_export(
    event_log: EventLog, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "result.json",
        account([{"name": "S", "type": "private_supergroup", "id": 66, "messages": [msg(1)]}]),
    )
    with pytest.raises(ExportError, match="--chat-id"):
        await run(event_log, path, migrated_from=BASIC)


async def test_projection_holds_the_basic_group_history_linked_to_the_supergroup(
    event_log: EventLog, tmp_path: Path, migrated_db: str
) -> None:
    await run(event_log, migrated_export(tmp_path), migrated_from=BASIC)
    await project_to_end(event_log, migrated_db)
    with psycopg.connect(migrated_db) as conn:
        groups = conn.execute(
            "SELECT chat_id, kind, title, migrated_to_chat_id, message_count FROM telegram_groups "
            "ORDER BY chat_id"
        ).fetchall()
        keys = conn.execute(
            "SELECT chat_id, id_scope, message_id FROM messages ORDER BY chat_id, message_id"
        ).fetchall()
    assert groups == [
        (SUPERGROUP, "supergroup", "Test group", None, 2),
        (BASIC, "group", "Old basic", SUPERGROUP, 3),
    ]
    assert keys == [
        (SUPERGROUP, "", 1),
        (SUPERGROUP, "", 2),
        (BASIC, "main", 1),
        (BASIC, "main", 2),
        (BASIC, "main", 3),
    ]
