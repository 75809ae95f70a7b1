"""Exports without ``date_unixtime``: local dates read in ``--tz``, else in the offset the file
reveals (a message with both fields, the epoch marker), else UTC; the summary says which, with
the count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from eventlog import EventLog, Record
from ingest.export import ExportImporter, ImportProgress
from ingest.export.timezones import evidence_of
from schemas.events import MessagePosted
from tests.ingest.export.exports import single_chat, write
from tests.ingest.export.log_sink import LogSink


def old(mid: int, date: str, **fields: Any) -> dict[str, Any]:
    """A message of an export written before ``date_unixtime`` existed."""
    return {"id": mid, "type": "message", "date": date, "from": "Bob", "text": "hi", **fields}


async def run(log: EventLog, messages: list[Any], tmp_path: Path, **kw: Any) -> ImportProgress:
    path = write(tmp_path / "result.json", single_chat(messages))
    return await ExportImporter(log=log, sink=LogSink(log), account="main", **kw).run(path)


async def dates(log: EventLog) -> dict[int, datetime]:
    out: dict[int, datetime] = {}
    async for batch in log.read():
        for r in batch:
            assert isinstance(r, Record)
            if isinstance(r.event, MessagePosted):
                out[r.event.message.message_id] = r.event.message.date
    return out


def test_epoch_marker_reveals_the_offset() -> None:
    found = evidence_of(old(1, "2018-02-01T10:00:00", edited="1970-01-01T05:30:00"))
    assert found is not None and found[0] == timedelta(hours=5, minutes=30)


def test_both_fields_reveal_the_offset() -> None:
    raw = old(1, "2024-03-01T14:00:00", date_unixtime=str(1_709_294_400))  # 12:00 UTC
    found = evidence_of(raw)
    assert found is not None and found[0] == timedelta(hours=2)


def test_a_real_edit_reveals_nothing() -> None:
    assert evidence_of(old(1, "2018-02-01T10:00:00", edited="2018-02-01T11:00:00")) is None


async def test_local_dates_without_evidence_are_read_as_utc_and_warned(
    event_log: EventLog, tmp_path: Path
) -> None:
    progress = await run(
        event_log, [old(1, "2018-02-01T10:00:00"), old(2, "2018-02-01T11:00:00")], tmp_path
    )
    assert (await dates(event_log))[1] == datetime(2018, 2, 1, 10, 0, tzinfo=UTC)
    assert [w for w in progress.warnings if "date_unixtime" in w] == [
        "2 messages have no date_unixtime; their local dates were read as UTC (the default: "
        "pass --tz with the exporting machine's zone)"
    ]


async def test_the_offset_the_file_reveals_is_used_and_said(
    event_log: EventLog, tmp_path: Path
) -> None:
    messages = [
        old(1, "2018-02-01T10:00:00", edited="1970-01-01T05:30:00"),
        old(2, "2018-02-01T11:00:00", edited="1970-01-01T05:30:00"),
    ]
    progress = await run(event_log, messages, tmp_path)
    assert (await dates(event_log))[1] == datetime(2018, 2, 1, 4, 30, tzinfo=UTC)
    assert any("UTC+05:30" in w and "the offset the file reveals" in w for w in progress.warnings)


async def test_tz_wins_and_a_contradicting_file_is_noted(
    event_log: EventLog, tmp_path: Path
) -> None:
    messages = [old(1, "2018-02-01T10:00:00", edited="1970-01-01T05:30:00")]
    progress = await run(event_log, messages, tmp_path, tz=ZoneInfo("Europe/Helsinki"))
    assert (await dates(event_log))[1] == datetime(2018, 2, 1, 8, 0, tzinfo=UTC)
    assert any("--tz Europe/Helsinki" in w and "suggests UTC+05:30" in w for w in progress.warnings)


async def test_an_export_with_unix_times_warns_nothing(event_log: EventLog, tmp_path: Path) -> None:
    raw = old(1, "2024-03-01T14:00:00", date_unixtime=str(1_709_294_400))
    progress = await run(event_log, [raw], tmp_path)
    assert (await dates(event_log))[1] == datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    assert not [w for w in progress.warnings if "date_unixtime" in w]
