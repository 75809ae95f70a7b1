"""Chat metadata is the newest by Telegram's own time, whatever the order of arrival: an export
imported after the live crawl does not bring back the chat's old name (docs/decisions/028)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
from telethon.tl import types

from eventlog import EventLog
from ingest.export import ExportImporter
from ingest.telegram.convert import snapshot_of
from ingest.telegram.handlers import posted
from schemas import ids
from schemas.events import ChatDiscovered, ChatInfo
from tests.ingest.export.exports import msg, service, single_chat, write
from tests.ingest.export.log_sink import LogSink
from tests.ingest.telegram import tl
from tests.projector.conftest import project_to_end

CHAT = -1001730156619


def _title(database_url: str) -> object:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT title FROM telegram_groups WHERE chat_id = %s", (CHAT,)
        ).fetchone()
    assert row is not None
    return row[0]


async def test_an_old_export_imported_late_keeps_the_current_name(
    event_log: EventLog, migrated_url: str, tmp_path: Path
) -> None:
    await event_log.append(
        ChatDiscovered(
            event_id=ids.discovered_id("main", CHAT, 1),
            account="main",
            observed_at=datetime(2026, 11, 1, tzinfo=UTC),
            source="live",
            chat_id=CHAT,
            chat=ChatInfo(chat_id=CHAT, kind="supergroup", title="Current name"),
        )
    )
    export = single_chat(
        [
            service(1, "edit_group_title", title="Old name"),  # 2024, as every message here
            msg(2, "hello"),
        ],
        name="Old name",
    )
    path = write(tmp_path / "result.json", export)
    await ExportImporter(log=event_log, sink=LogSink(event_log), account="main").run(path)
    await project_to_end(event_log, migrated_url, batch_size=1)
    assert _title(migrated_url) == "Current name"


async def test_live_migration_messages_link_the_basic_group_to_its_supergroup(
    event_log: EventLog, migrated_url: str
) -> None:
    """MessageActionChatMigrateTo in the basic group and MessageActionChannelMigrateFrom in the
    supergroup, as live ingest and backfill record them, set the link (rule "migration link"); a
    later discovery that names none keeps it."""
    to = tl.service(9, types.MessageActionChatMigrateTo(channel_id=tl.CHANNEL), chat=_basic())
    came_from = tl.service(1, types.MessageActionChannelMigrateFrom(title="Old", chat_id=556))
    events = [
        posted(
            account="main",
            chat_id=-tl.BASIC,
            snap=snapshot_of(to),
            source="live",
            observed_at=tl.BASE,
        ),
        posted(
            account="main",
            chat_id=tl.CHANNEL_MARKED,
            snap=snapshot_of(came_from),
            source="backfill",
            observed_at=tl.BASE,
        ),
        ChatDiscovered(
            event_id=ids.discovered_id("main", -tl.BASIC, 2),
            account="main",
            observed_at=tl.at(60),
            source="live",
            chat_id=-tl.BASIC,
            chat=ChatInfo(chat_id=-tl.BASIC, kind="group", title="Basic"),
        ),
    ]
    await event_log.append_many(events)
    await project_to_end(event_log, migrated_url, batch_size=1)
    with psycopg.connect(migrated_url) as conn:
        rows = conn.execute(
            "SELECT chat_id, kind, migrated_to_chat_id FROM telegram_groups WHERE chat_id > -1000 "
            "ORDER BY chat_id"
        ).fetchall()
    assert rows == [(-556, "group", tl.CHANNEL_MARKED), (-tl.BASIC, "group", tl.CHANNEL_MARKED)]


def _basic() -> types.PeerChat:
    return types.PeerChat(tl.BASIC)
