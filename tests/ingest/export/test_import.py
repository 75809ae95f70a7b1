"""Importing exports into a real JetStream log: events, idempotence, live overlap, full exports."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eventlog import EventLog, Record
from ingest.export import ExportImporter, ImportProgress, SkippedMessage
from schemas.events import ChatDiscovered, ChatInfo, ChatLeft, ChatUpdated, MessagePosted
from schemas.ids import discovered_id, left_id, posted_id
from tests.helpers import posted
from tests.ingest.export.exports import account, msg, service, single_chat, write
from tests.ingest.export.log_sink import LogSink

CHAT = -1001730156619


async def records(log: EventLog, subjects: list[str] | None = None) -> list[Record]:
    out: list[Record] = []
    async for batch in log.read(subjects=subjects):
        for r in batch:
            assert isinstance(r, Record), r
            out.append(r)
    return out


async def run_import(log: EventLog, path: Path, **kwargs: Any) -> tuple[ImportProgress, LogSink]:
    sink = LogSink(log)
    progress = await ExportImporter(log=log, sink=sink, account="main", **kwargs).run(path)
    return progress, sink


def sample_export(tmp_path: Path) -> Path:
    return write(
        tmp_path / "result.json",
        single_chat(
            [
                service(1, "create_channel", title="Test group"),
                msg(2, "first"),
                msg(
                    3,
                    ["hi ", {"type": "bold", "text": "all"}],
                    text_entities=[
                        {"type": "plain", "text": "hi "},
                        {"type": "bold", "text": "all"},
                    ],
                    reply_to_message_id=2,
                ),
                msg(4, "edited", edited="2024-03-01T13:00:00", edited_unixtime="1709298000"),
            ]
        ),
    )


async def test_single_chat_export_appends_chat_and_messages(
    event_log: EventLog, tmp_path: Path
) -> None:
    progress, _ = await run_import(event_log, sample_export(tmp_path))
    found = await records(event_log)
    assert [type(r.event).__name__ for r in found] == ["MessagePosted"] * 4 + ["ChatDiscovered"]
    chat = found[-1].event
    assert (
        isinstance(chat, ChatDiscovered)
        and chat.chat.chat_id == CHAT
        and chat.chat.kind == "supergroup"
    )
    assert chat.event_id == discovered_id("main", CHAT) and chat.chat.title == "Test group"
    for r, message_id in zip(found[:-1], [1, 2, 3, 4], strict=True):
        assert isinstance(r.event, MessagePosted)
        assert (r.subject, r.event.event_id, r.event.source) == (
            f"tg.msg.{CHAT}",
            posted_id(CHAT, message_id, account="main"),
            "import",
        )
    assert (progress.chats, progress.imported, progress.already_present, progress.skipped) == (
        1,
        4,
        0,
        0,
    )


async def test_chat_name_is_as_of_the_newest_message(event_log: EventLog, tmp_path: Path) -> None:
    await run_import(event_log, sample_export(tmp_path))
    found = [r.event for r in await records(event_log) if isinstance(r.event, ChatDiscovered)]
    newest = datetime.fromtimestamp(1_709_294_400 + 4, UTC)  # message 4's date_unixtime
    assert [e.chat.as_of for e in found] == [newest]


async def test_edited_message_is_one_posted_event_with_its_edit_date(
    event_log: EventLog, tmp_path: Path
) -> None:
    await run_import(event_log, sample_export(tmp_path))
    events = [r.event for r in await records(event_log, [f"tg.msg.{CHAT}"])]
    edited = [e for e in events if isinstance(e, MessagePosted) and e.message.message_id == 4]
    assert len(edited) == 1 and edited[0].message.edit_date == datetime(
        2024, 3, 1, 13, 0, tzinfo=UTC
    )
    assert all(isinstance(e, MessagePosted) for e in events)  # no MessageEdited


async def test_importing_twice_appends_nothing_without_relying_on_dedup(
    event_log: EventLog, tmp_path: Path
) -> None:
    path = sample_export(tmp_path)
    await run_import(event_log, path)
    before = (await event_log.info()).last_seq
    progress, sink = await run_import(event_log, path)
    assert sink.appended == 0  # nothing even reached JetStream's duplicate window
    assert (progress.imported, progress.already_present) == (0, 4)
    assert (await event_log.info()).last_seq == before


async def test_messages_crawled_live_count_as_already_present(
    event_log: EventLog, tmp_path: Path
) -> None:
    await event_log.append(posted(CHAT, 2, text="first"))
    progress, _ = await run_import(event_log, sample_export(tmp_path))
    assert (progress.imported, progress.already_present) == (3, 1)
    ids = [r.event.event_id for r in await records(event_log, [f"tg.msg.{CHAT}"])]
    assert len(ids) == len(set(ids)) == 4


async def test_basic_group_messages_of_another_account_are_not_already_present(
    event_log: EventLog, tmp_path: Path
) -> None:
    group = -4242
    await event_log.append(posted(group, 2, text="other account's own id 2", account="other"))
    export = single_chat([msg(2, "first")], chat_id=4242, chat_type="private_group")
    progress, _ = await run_import(event_log, write(tmp_path / "result.json", export))
    assert (progress.imported, progress.already_present) == (1, 0)
    again, _ = await run_import(event_log, write(tmp_path / "result.json", export))
    assert (again.imported, again.already_present) == (0, 1)


async def test_live_crawl_after_import_has_the_same_event_ids(
    event_log: EventLog, tmp_path: Path
) -> None:
    await run_import(event_log, sample_export(tmp_path))
    live = await event_log.append(posted(CHAT, 3, text="hi all"))
    assert live.duplicate  # same fact, same id: one row


async def test_full_account_export_imports_chats_and_left_chats(
    event_log: EventLog, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "result.json",
        account(
            [
                {
                    "name": "Friend",
                    "type": "personal_chat",
                    "id": 555,
                    "messages": [msg(1), msg(2)],
                },
                {"type": "saved_messages", "id": 42, "messages": [msg(7, saved_from="Group")]},
                {
                    "name": "Old group",
                    "type": "private_group",
                    "id": 77,
                    "messages": [service(1, "create_group", title="Old group")],
                },
                {"name": "Channel", "type": "public_channel", "id": 88, "messages": []},
            ],
            left=[{"name": "Left", "type": "private_supergroup", "id": 99, "messages": [msg(5)]}],
        ),
    )
    progress, _ = await run_import(event_log, path)
    found = await records(event_log)
    chats = {
        r.event.chat.chat_id: r.event.chat.kind
        for r in found
        if isinstance(r.event, ChatDiscovered)
    }
    assert chats == {
        555: "private",
        42: "saved",
        -77: "group",
        -1000000000088: "channel",
        -1000000000099: "supergroup",
    }
    posted_in = sorted(
        (r.event.chat_id, r.event.message.message_id)
        for r in found
        if isinstance(r.event, MessagePosted)
    )
    assert posted_in == [(-1000000000099, 5), (-77, 1), (42, 7), (555, 1), (555, 2)]
    assert (progress.chats, progress.imported) == (5, 5)


async def test_left_chats_are_recorded_as_left_once(event_log: EventLog, tmp_path: Path) -> None:
    path = write(
        tmp_path / "result.json",
        account(
            [{"name": "Here", "type": "private_group", "id": 76, "messages": [msg(1)]}],
            left=[{"name": "Left", "type": "private_supergroup", "id": 99, "messages": [msg(5)]}],
        ),
    )
    await run_import(event_log, path)
    await run_import(event_log, path)
    left = [r.event for r in await records(event_log) if isinstance(r.event, ChatLeft)]
    assert [(e.chat_id, e.source) for e in left] == [(-1000000000099, "import")]
    assert left[0].event_id == left_id("main", -1000000000099)


async def test_export_with_a_byte_order_mark_imports(event_log: EventLog, tmp_path: Path) -> None:
    path = sample_export(tmp_path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    progress, _ = await run_import(event_log, path)
    assert (progress.imported, progress.skipped) == (4, 0)


async def test_chat_id_option_selects_one_chat_of_a_full_export(
    event_log: EventLog, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "result.json",
        account(
            [
                {"name": "A", "type": "personal_chat", "id": 555, "messages": [msg(1)]},
                {"name": "B", "type": "private_supergroup", "id": 66, "messages": [msg(1), msg(2)]},
            ]
        ),
    )
    progress, _ = await run_import(event_log, path, chat_id=-1000000000066)
    assert {r.subject for r in await records(event_log)} == {
        "tg.chat.-1000000000066",
        "tg.msg.-1000000000066",
    }
    assert (progress.chats, progress.imported) == (1, 2)


async def test_chat_id_option_overrides_a_single_chat_id(
    event_log: EventLog, tmp_path: Path
) -> None:
    path = write(tmp_path / "result.json", single_chat([msg(1)], chat_type="", chat_id=0))
    await run_import(event_log, path, chat_id=-1000000000123)
    assert {r.event.chat_id for r in await records(event_log)} == {-1000000000123}


async def test_unmappable_messages_are_reported_counted_and_skipped(
    event_log: EventLog, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "result.json",
        single_chat(
            [
                msg(1),
                {"id": 2, "type": "unsupported"},
                {"id": 3, "type": "message"},
                "not an object",
                msg(4),
                msg(4),
            ]
        ),
    )
    reported: list[SkippedMessage] = []
    sink = LogSink(event_log)
    progress = await ExportImporter(
        log=event_log, sink=sink, account="main", on_skip=reported.append
    ).run(path)
    assert (progress.imported, progress.skipped) == (2, 4)
    assert [s.message_id for s in reported] == [2, 3, None, 4]
    assert sum(progress.skip_reasons.values()) == 4
    assert any("unsupported" in reason for reason in progress.skip_reasons)


async def test_old_format_export_imports(event_log: EventLog, tmp_path: Path) -> None:
    old = [
        {
            "id": "1",
            "type": "message",
            "date": "2018-02-01T10:00:00",
            "edited": "1970-01-01T02:00:00",
            "from": "Bob",
            "from_id": 4321,
            "text": ["hi ", {"type": "mention", "text": "@ann"}],
        },
        {
            "id": 2,
            "type": "service",
            "date": "2018-02-01T10:05:00",
            "actor": "Bob",
            "actor_id": 4321,
            "action": "pin_message",
            "message_id": 1,
            "text": "",
        },
    ]
    path = write(
        tmp_path / "result.json", single_chat(old, chat_type="private_group", chat_id="77")
    )
    progress, _ = await run_import(
        event_log, path, tz=__import__("zoneinfo").ZoneInfo("Europe/Helsinki")
    )
    events = [r.event for r in await records(event_log, ["tg.msg.-77"])]
    first = events[0]
    assert isinstance(first, MessagePosted)
    assert (
        first.message.date == datetime(2018, 2, 1, 8, 0, tzinfo=UTC)
        and first.message.edit_date is None
    )
    assert first.message.sender is not None and first.message.sender.id == 4321
    assert first.message.text == "hi @ann" and first.message.entities[0].type == "mention"
    assert progress.imported == 2 and progress.skipped == 0


async def test_numbers_from_the_file_are_floats_not_decimals(
    event_log: EventLog, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "result.json",
        account(
            [
                {
                    "name": "A",
                    "type": "personal_chat",
                    "id": 5,
                    "messages": [
                        msg(
                            1,
                            "",
                            location_information={"latitude": 60.1841, "longitude": 24.8301},
                            live_location_period_seconds=900,
                        ),
                    ],
                }
            ]
        ),
    )
    venue = msg(
        2, "", place_name="Otaniemi", location_information={"latitude": 60.5, "longitude": 24.5}
    )
    single = write(tmp_path / "single.json", single_chat([venue]))
    await run_import(event_log, path)
    await run_import(event_log, single)
    media = [
        r.event.message.media
        for r in await records(event_log)
        if isinstance(r.event, MessagePosted)
    ]
    assert [(m.latitude, m.longitude) for m in media if m is not None] == [
        (60.1841, 24.8301),
        (60.5, 24.5),
    ]


async def test_chat_without_a_usable_type_is_skipped_and_counted(
    event_log: EventLog, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "result.json",
        account(
            [
                {"name": "Unknown", "type": "", "id": 5, "messages": [msg(1), msg(2)]},
                {"name": "Known", "type": "personal_chat", "id": 6, "messages": [msg(1)]},
            ]
        ),
    )
    progress, _ = await run_import(event_log, path)
    assert (progress.chats, progress.chats_skipped, progress.skipped, progress.imported) == (
        1,
        1,
        2,
        1,
    )
    assert "no usable id/type" in next(iter(progress.skip_reasons))


async def test_a_text_that_is_a_number_is_kept_and_warned(
    event_log: EventLog, tmp_path: Path
) -> None:
    path = write(tmp_path / "result.json", single_chat([msg(1, 42), msg(2, {"text": "obj"})]))
    progress, _ = await run_import(event_log, path)
    texts = [
        r.event.message.text for r in await records(event_log) if isinstance(r.event, MessagePosted)
    ]
    assert texts == ["42", "obj"]
    assert any(w.startswith("2 messages have a `text`") for w in progress.warnings)


async def test_a_chat_listed_twice_is_warned(event_log: EventLog, tmp_path: Path) -> None:
    twice = {"name": "B", "type": "private_supergroup", "id": 66}
    path = write(
        tmp_path / "result.json",
        account([{**twice, "messages": [msg(1)]}, {**twice, "messages": [msg(2)]}]),
    )
    progress, _ = await run_import(event_log, path)
    assert progress.imported == 2
    assert any("chat -1000000000066 appears 2 times" in w for w in progress.warnings)


async def test_a_chat_with_topics_is_a_forum(event_log: EventLog, tmp_path: Path) -> None:
    path = write(
        tmp_path / "result.json",
        single_chat([service(1, "topic_created", title="Homework"), msg(2)]),
    )
    await run_import(event_log, path)
    chats = [r.event.chat for r in await records(event_log) if isinstance(r.event, ChatDiscovered)]
    assert [c.forum for c in chats] == [True]


async def test_a_forum_imported_before_without_its_flag_gets_it_once(
    event_log: EventLog, tmp_path: Path
) -> None:
    chat = -1001730156619
    # What an importer that did not detect forums left: the discovery, forum false.
    await event_log.append(
        ChatDiscovered(
            event_id=discovered_id("main", chat),
            account="main",
            observed_at=datetime(2026, 1, 1, tzinfo=UTC),
            source="import",
            chat_id=chat,
            chat=ChatInfo(chat_id=chat, kind="supergroup", title="Test group"),
        )
    )
    path = write(
        tmp_path / "result.json",
        single_chat([service(1, "topic_created", title="Homework"), msg(2)]),
    )
    await run_import(event_log, path)
    last = (await event_log.info()).last_seq
    await run_import(event_log, path)  # the flag is in the log now: nothing more
    assert (await event_log.info()).last_seq == last
    updates = [r.event.chat for r in await records(event_log) if isinstance(r.event, ChatUpdated)]
    assert [(c.chat_id, c.forum) for c in updates] == [(chat, True)]
