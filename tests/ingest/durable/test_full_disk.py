"""A full disk (a real 512 KiB tmpfs that runs out of space): nothing is dropped, intake pauses
and resumes by itself, and no torn record is left behind a failed write."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from eventlog import EventLog
from ingest.durable.errors import SpoolError
from ingest.durable.spool import Spool
from schemas.codec import Codec
from schemas.events import IngestFailed
from tests.helpers import posted, wait_until
from tests.ingest.durable.helpers import fill_disk, make_sink, read_events


def test_a_failed_spool_write_leaves_no_torn_record(small_disk: Path) -> None:
    spool = Spool(small_disk / "spool", codec=Codec())
    spool.open()
    written = [posted(-1001, i) for i in range(1, 11)]
    spool.append(written, sync=True)
    filler = fill_disk(small_disk)
    with pytest.raises(SpoolError, match="No space left"):
        spool.append([posted(-1001, i, text="x" * 2000) for i in range(11, 51)], sync=True)
    filler.unlink()
    later = [posted(-1001, i) for i in range(51, 61)]
    spool.append(later, sync=True)
    spool.close()
    reopened = Spool(small_disk / "spool", codec=Codec())
    reopened.open()
    assert (reopened.torn_records, reopened.corrupt_records) == (0, 0)
    batch = reopened.peek(1000)
    assert batch is not None
    assert [e.event_id for e in batch.events] == [e.event_id for e in written + later]
    reopened.close()


async def test_a_full_disk_pauses_intake_and_resumes_when_space_returns(
    small_disk: Path, quick_log: EventLog
) -> None:
    sink = make_sink(small_disk, None, max_memory_s=0.05, retry_interval_s=0.05)
    await sink.start()
    filler = fill_disk(small_disk)
    events = [posted(-1001, i, text="y" * 1000) for i in range(1, 201)]
    try:
        first = asyncio.create_task(sink.submit_many(events[:100]))
        await wait_until(lambda: sink.status().intake_paused, timeout=10)
        second = asyncio.create_task(sink.submit_many(events[100:]))
        await asyncio.sleep(0)  # let it reach the pause
        assert sink.status().buffer_depth <= 101  # the second batch waits outside the buffer
        assert not first.done() and not second.done()
        filler.unlink()
        await asyncio.wait_for(asyncio.gather(first, second), timeout=10)
        status = sink.status()
        assert not status.intake_paused and status.spool_write_failures >= 1
        sink.attach(quick_log)
        await wait_until(lambda: sink.status().spool_records == 0, timeout=30)
        stored = await read_events(quick_log)
        traffic = [e.event_id for e in stored if not isinstance(e, IngestFailed)]
        assert traffic == [e.event_id for e in events]
        assert [e.error for e in stored if isinstance(e, IngestFailed)] == [
            "spool write failed: intake paused"
        ]
    finally:
        await sink.close()


async def test_close_with_a_full_disk_and_no_log_finishes(small_disk: Path) -> None:
    sink = make_sink(small_disk, None, max_memory_s=0.05, retry_interval_s=0.05)
    await sink.start()
    fill_disk(small_disk)
    for i in range(1, 51):
        sink.submit(posted(-1001, i, text="z" * 1000))
    await wait_until(lambda: sink.status().intake_paused, timeout=10)
    await asyncio.wait_for(sink.close(drain_timeout_s=1), timeout=10)
    assert sink.status().buffer_depth > 0  # counted and logged: nowhere to put them
