"""Malformed files end with a clear error naming the position; the log stays consistent and re-runs are safe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventlog import EventLog, Record
from ingest.export import ExportImporter, MalformedExport
from ingest.export.reader import ExportReader
from schemas.events import MessagePosted
from tests.ingest.export.exports import account, msg, single_chat, write
from tests.ingest.export.generate import write_single_chat_export
from tests.ingest.export.log_sink import LogSink


def read_all(path: Path) -> int:
    count = 0
    for _, messages in ExportReader(path).chats():
        count += sum(1 for _ in messages)
    return count


async def posted_ids(log: EventLog) -> list[int]:
    out: list[int] = []
    async for batch in log.read():
        for r in batch:
            assert isinstance(r, Record), r  # every stored record is a complete, valid event
            if isinstance(r.event, MessagePosted):
                out.append(r.event.message.message_id)
    return out


def test_not_json_names_the_first_byte(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text("@ this is not JSON")
    with pytest.raises(MalformedExport) as info:
        read_all(path)
    assert info.value.byte_offset == 0 and info.value.line == 1
    assert "not valid JSON" in str(info.value) and str(path) in str(info.value)


def test_empty_file_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_bytes(b"")
    with pytest.raises(MalformedExport):
        read_all(path)


def test_syntax_error_deep_in_a_large_file_is_located_exactly(tmp_path: Path) -> None:
    path = write_single_chat_export(
        tmp_path / "result.json", messages=5000
    )  # ~2 MB: many parser chunks
    data = path.read_bytes()
    at = data.index(b'"id":4000,')
    path.write_bytes(data[:at] + b"#" + data[at + 1 :])  # no JSON value starts with '#'
    with pytest.raises(MalformedExport) as info:
        read_all(path)
    assert info.value.byte_offset == at
    assert info.value.line == data[:at].count(b"\n") + 1
    assert info.value.json_path is not None and info.value.json_path.startswith("messages[")


@pytest.mark.parametrize(
    ("data", "reason", "json_path"),
    [
        ([1, 2, 3], "must be a JSON object", "$"),
        (
            {"name": "x", "type": "personal_chat", "id": 1, "messages": {"a": 1}},
            "`messages` must be an array",
            "messages",
        ),
        ({"about": "x", "contacts": {"list": []}}, "no `messages`", "$"),
        (
            {"about": "x", "chats": {"about": "c", "list": {"a": 1}}},
            "`chats.list` must be an array",
            "chats.list",
        ),
        ({"about": "x", "chats": [1]}, "`chats` must be an object", "chats"),
        ({"chats": {"list": ["chat"]}}, "a chat must be an object", "chats.list[0]"),
        (
            {"chats": {"list": [{"type": "personal_chat", "id": 1, "messages": 5}]}},
            "`messages` must be an array",
            "chats.list[0].messages",
        ),
    ],
)
def test_wrong_structure_is_a_clear_error(
    tmp_path: Path, data: object, reason: str, json_path: str
) -> None:
    path = write(tmp_path / "result.json", data)
    with pytest.raises(MalformedExport) as info:
        read_all(path)
    assert reason in info.value.reason and info.value.json_path == json_path
    assert info.value.byte_offset is not None


async def test_truncated_file_keeps_the_log_consistent_and_rerun_completes(
    event_log: EventLog, tmp_path: Path
) -> None:
    good = write_single_chat_export(tmp_path / "good.json", messages=6000)
    data = good.read_bytes()
    broken = tmp_path / "result.json"
    broken.write_bytes(data[: len(data) * 2 // 3])
    importer = ExportImporter(
        log=event_log, sink=LogSink(event_log), account="main", batch_size=700
    )
    with pytest.raises(MalformedExport) as info:
        await importer.run(broken)
    assert (
        info.value.byte_offset == len(data) * 2 // 3 - 1
        or info.value.byte_offset == len(data) * 2 // 3
    )
    partial = await posted_ids(event_log)
    assert 0 < len(partial) < 6000 and partial == list(range(1, len(partial) + 1))
    assert importer.progress.imported == len(
        partial
    )  # every message read before the error is in the log
    assert len(partial) % 700 != 0  # including the last, partial batch
    progress = await ExportImporter(log=event_log, sink=LogSink(event_log), account="main").run(
        good
    )
    assert (progress.already_present, progress.imported) == (len(partial), 6000 - len(partial))
    assert sorted(await posted_ids(event_log)) == list(range(1, 6001))


async def test_error_in_a_later_chat_keeps_earlier_chats(
    event_log: EventLog, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "result.json",
        account(
            [
                {"name": "A", "type": "personal_chat", "id": 555, "messages": [msg(1), msg(2)]},
                {"name": "B", "type": "personal_chat", "id": 556, "messages": [msg(1)]},
            ]
        ),
    )
    text = path.read_text()
    cut = text.index('"B"')
    path.write_text(text[:cut] + '"B" #' + text[cut + 3 :])
    with pytest.raises(MalformedExport) as info:
        await ExportImporter(log=event_log, sink=LogSink(event_log), account="main").run(path)
    assert info.value.byte_offset == len(text[:cut].encode()) + 4
    assert await posted_ids(event_log) == [1, 2]


def test_header_after_messages_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"messages": [msg(1)], "type": "personal_chat", "id": 5}))
    chats = [(h.type, h.id, sum(1 for _ in m)) for h, m in ExportReader(path).chats()]
    assert chats == [("personal_chat", 5, 1)]


def test_single_chat_shape_is_detected_without_reading_the_messages(tmp_path: Path) -> None:
    path = write(tmp_path / "result.json", single_chat([msg(i) for i in range(1, 3)]))
    chats = ExportReader(path).chats()
    header, messages = next(chats)
    assert (header.section, header.id, header.name) == ("single", 1_730_156_619, "Test group")
    assert [m["id"] for m in messages] == [1, 2]  # type: ignore[index]
    assert next(chats, None) is None
