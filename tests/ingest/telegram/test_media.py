"""Media download filters (type, size cap) and the content-addressed local store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from telethon import errors as tg_errors

from eventlog import EventLog
from ingest.telegram.handlers import posted
from ingest.telegram.media import LocalMediaStore, MediaDownloader
from ingest.telegram.ratelimit import RateLimiter
from schemas.events import IngestFailed, Media, MediaStored, MessagePosted, MessageSnapshot

from .fakes import FakeGateway, Sleeps
from .logsink import LogSink, read_all
from .tl import CHANNEL_MARKED, channel_message


def _posted(mid: int, media: Media) -> MessagePosted:
    snap = MessageSnapshot(message_id=mid, date=datetime(2026, 11, 1, tzinfo=UTC), media=media)
    return posted(
        account="main", chat_id=CHANNEL_MARKED, snap=snap, source="live", observed_at=snap.date
    )


def _files(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _downloader(gw: FakeGateway, sink: LogSink, root: Path) -> MediaDownloader:
    return MediaDownloader(
        account="main",
        gateway=gw,
        limiter=RateLimiter(account="main", emit=sink.submit, sleep=Sleeps()),
        store=LocalMediaStore(root=root),
        sink=sink,
        types=("photo", "video"),
        max_bytes=1000,
    )


async def test_type_filter_and_size_cap_skip_downloads(event_log: EventLog, tmp_path: Path) -> None:
    gw = FakeGateway()
    gw.media = {1: b"a", 2: b"b", 3: b"x" * 2000}
    async with LogSink(event_log) as sink:
        dl = _downloader(gw, sink, tmp_path / "media")
        dl.offer(_posted(1, Media(type="voice", size=1)), channel_message(1))
        dl.offer(_posted(2, Media(type="video", size=5000)), channel_message(2))
        assert dl.pending == 0 and dl.skipped == 1
        dl.offer(_posted(3, Media(type="photo")), channel_message(3))  # size unknown up front
        assert dl.pending == 1
        assert (
            await dl.process(_posted(3, Media(type="photo")), channel_message(3)) is None
        )  # too large
    assert gw.calls and _files(tmp_path / "media") == []


async def test_identical_bytes_share_one_file(event_log: EventLog, tmp_path: Path) -> None:
    gw = FakeGateway()
    gw.media = {1: b"same", 2: b"same", 3: b"different"}
    async with LogSink(event_log) as sink:
        dl = _downloader(gw, sink, tmp_path / "media")
        stored = [
            await dl.process(
                _posted(i, Media(type="photo", mime_type="image/jpeg")), channel_message(i)
            )
            for i in (1, 2, 3)
        ]
        await sink.flush()
    assert all(s is not None for s in stored)
    paths = [s.path for s in stored if s]
    assert paths[0] == paths[1] != paths[2] and paths[0].endswith(".jpg")
    assert _files(tmp_path / "media") == sorted({Path(p).name for p in paths})
    events = [e for e in await read_all(event_log) if isinstance(e, MediaStored)]
    assert [e.message_id for e in events] == [1, 2, 3] and events[0].size == 4


async def test_a_failed_download_becomes_the_groups_error_event(event_log: EventLog) -> None:
    gw = FakeGateway()
    gw.media = {7: b"photo"}
    gw.fail["download_media"] = [tg_errors.FileReferenceExpiredError(request=None)]
    async with LogSink(event_log) as sink:
        dl = _downloader(gw, sink, Path("/nonexistent-media-root"))
        dl.offer(_posted(7, Media(type="photo", size=5)), channel_message(7))
        worker = asyncio.create_task(dl.run())
        try:
            await asyncio.wait_for(dl.drain(), 5)
        finally:
            worker.cancel()
        await sink.flush()
    errors = [e for e in await read_all(event_log) if isinstance(e, IngestFailed)]
    assert dl.failed == 1 and len(errors) == 1
    assert errors[0].chat_id == CHANNEL_MARKED
    assert "media download of message 7 failed: GatewayError" in errors[0].error
