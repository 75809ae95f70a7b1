"""``aaltohub import``: the command end to end, its summary, its progress bar and its exit codes."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from aaltohub.cli import main
from aaltohub.embedded.nats_server import NatsServer
from aaltohub.subcommands.import_export import import_sink, settle
from eventlog import EventLog
from ingest.export import ImportProgress
from ingest.export.progress import ProgressBar, format_summary
from tests.helpers import posted
from tests.ingest.export.exports import msg, single_chat, write


async def _last_seq(url: str) -> int:
    async with await EventLog.connect(url) as log:
        return (await log.info()).last_seq


def test_import_command_prints_the_summary(
    nats_server: NatsServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NATS_URL", nats_server.url)
    asyncio.run(_last_seq(nats_server.url))  # the operator creates the stream (up / log init)
    path = write(
        tmp_path / "result.json", single_chat([msg(1), msg(2), {"id": 3, "type": "unsupported"}])
    )
    assert main(["import", str(path), "--account", "acct1", "--tz", "Europe/Helsinki"]) == 0
    out, err = capsys.readouterr()
    assert "imported: 2" in out and "skipped: 1" in out and "already present: 0" in out
    assert "message 3" in err
    assert asyncio.run(_last_seq(nats_server.url)) == 3  # chat discovered + two messages
    assert main(["import", str(path)]) == 0
    assert "already present: 2" in capsys.readouterr().out


def test_import_command_exits_2_on_a_malformed_file(
    nats_server: NatsServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NATS_URL", nats_server.url)
    asyncio.run(_last_seq(nats_server.url))  # the operator creates the stream (up / log init)
    path = tmp_path / "result.json"
    text = '{"name": "x", "type": "personal_chat", "id": 5, "messages": [{"id": 1,,}]}'
    path.write_text(text)
    assert main(["import", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"byte offset {text.index(',,') + 1}, line 1, at messages[0]" in err


def test_import_command_exits_1_when_a_message_is_too_large_for_the_log(
    nats_server: NatsServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NATS_URL", nats_server.url)
    asyncio.run(_last_seq(nats_server.url))  # the operator creates the stream (up / log init)
    huge = "x" * (9 * 1024 * 1024)  # above the stream's 8 MiB message limit
    path = write(tmp_path / "result.json", single_chat([msg(1), msg(2, huge)]))
    assert main(["import", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "imported: 1" in out and "failed (not stored): 1" in out
    assert "too large for the log" in err
    before = asyncio.run(_last_seq(nats_server.url))
    assert main(["import", str(path)]) == 1
    assert asyncio.run(_last_seq(nats_server.url)) == before  # no error event per re-import


def test_import_command_rejects_an_unknown_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", str(tmp_path / "x.json"), "--tz", "Mars/Olympus"]) == 1
    assert "unknown time zone" in capsys.readouterr().err


def test_progress_bar_shows_messages_rate_and_bytes() -> None:
    stream = io.StringIO()
    progress = ImportProgress(
        messages=5000,
        imported=4000,
        already_present=1000,
        bytes_read=2 * 2**20,
        total_bytes=4 * 2**20,
        elapsed_s=2.0,
    )
    ProgressBar(stream).finish(progress)
    line = stream.getvalue()
    assert (
        "50.0%" in line
        and "5,000 msgs" in line
        and "2,500 msgs/s" in line
        and "2.0 MiB/4.0 MiB" in line
    )


def test_summary_lists_skip_reasons() -> None:
    progress = ImportProgress(
        chats=2,
        messages=10,
        imported=7,
        already_present=1,
        skipped=2,
        skip_reasons={"unsupported message": 2},
    )
    summary = format_summary(progress)
    assert (
        "chats: 2" in summary and "imported: 7" in summary and "2 × unsupported message" in summary
    )


def test_import_command_rejects_a_bad_account_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", str(tmp_path / "x.json"), "--account", "two words"]) == 1
    assert "--account" in capsys.readouterr().err


async def test_events_still_spooled_at_the_end_are_not_counted_as_imported(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    progress = ImportProgress(messages=30, imported=30)
    async with await EventLog.connect(nats_server.url) as log:
        sink = import_sink(tmp_path, log)
        await sink.start()
        nats_server.stop()
        try:
            await sink.submit_many([posted(-1001, i) for i in range(1, 31)])  # spooled
            await settle(sink, progress, stall_s=0.5)
        finally:
            await sink.close()
            nats_server.start()
    assert (progress.spooled, progress.imported) == (30, 0)
    assert "not yet in the log: 30" in format_summary(progress)
