"""``aaltohub log tail``/``info`` against a real nats-server (NATS_URL configured)."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from aaltohub.cli import main
from eventlog import EventLog
from tests.helpers import posted, publish_raw

CHAT_A = -1001111
CHAT_B = -1002222


@pytest.fixture
async def filled_log(
    event_log: EventLog, nats_server: object, monkeypatch: pytest.MonkeyPatch
) -> EventLog:
    """Six message events in two chats, and NATS_URL pointing at the server."""
    await event_log.append_many(
        [posted(CHAT_A if i % 2 else CHAT_B, i, text=f"text {i}") for i in range(1, 7)]
    )
    monkeypatch.setenv("NATS_URL", nats_server.url)  # type: ignore[attr-defined]
    return event_log


async def _cli(*args: str) -> int:
    return await asyncio.to_thread(main, list(args))


async def test_tail_prints_one_human_line_per_event(
    filled_log: EventLog, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _cli("log", "tail", "--from", "2", "--limit", "3") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [int(line.split()[0]) for line in lines] == [2, 3, 4]
    assert "message.posted" in lines[0] and "#2 Alice: text 2" in lines[0]


async def test_tail_json_prints_the_stored_payload(
    filled_log: EventLog, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _cli("log", "tail", "--from", "1", "--limit", "1", "--json") == 0
    line = json.loads(capsys.readouterr().out)
    record = await filled_log.get(1)
    assert line["seq"] == 1
    assert line["event"] == json.loads(filled_log.codec.encode(record.event))  # type: ignore[union-attr]


async def test_tail_filters_by_chat_and_kind(
    filled_log: EventLog, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _cli("log", "tail", "--from", "1", "--chat", str(CHAT_A), "--kind", "message") == 0
    seqs = [int(line.split()[0]) for line in capsys.readouterr().out.splitlines()]
    assert seqs == [1, 3, 5]


async def test_tail_without_from_shows_the_last_records(
    filled_log: EventLog, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _cli("log", "tail", "--limit", "2") == 0
    assert [int(line.split()[0]) for line in capsys.readouterr().out.splitlines()] == [5, 6]


async def test_tail_shows_bad_records_and_keeps_going(
    filled_log: EventLog, capsys: pytest.CaptureFixture[str]
) -> None:
    await publish_raw(os.environ["NATS_URL"], f"tg.msg.{CHAT_A}", b"{not json")
    await filled_log.append(posted(CHAT_A, 99))
    assert await _cli("log", "tail", "--from", "6") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert "BAD" in lines[1] and "MalformedEventError" in lines[1]
    assert "#99" in lines[2]


async def test_info_prints_the_stream_state(
    filled_log: EventLog, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _cli("log", "info") == 0
    out = capsys.readouterr().out
    assert "messages    6" in out and "last seq    6" in out


async def test_log_without_a_server_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AALTOHUB_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("NATS_URL", raising=False)
    assert await _cli("log", "info") == 1
    assert "no running `aaltohub up`" in capsys.readouterr().err


async def test_tail_follow_prints_events_appended_later(
    filled_log: EventLog, capsys: pytest.CaptureFixture[str]
) -> None:
    tail = asyncio.create_task(_cli("log", "tail", "--from", "7", "--follow", "--limit", "2"))
    await filled_log.append_many([posted(CHAT_A, 7), posted(CHAT_A, 8)])
    assert await asyncio.wait_for(tail, timeout=30) == 0
    assert [int(line.split()[0]) for line in capsys.readouterr().out.splitlines()] == [7, 8]


async def test_tail_json_shows_bad_records_as_json(
    filled_log: EventLog, capsys: pytest.CaptureFixture[str]
) -> None:
    await publish_raw(os.environ["NATS_URL"], f"tg.msg.{CHAT_B}", b"[1]")
    assert await _cli("log", "tail", "--from", "7", "--json") == 0
    line = json.loads(capsys.readouterr().out)
    assert line["seq"] == 7 and line["data"] == "[1]" and "MalformedEventError" in line["error"]
