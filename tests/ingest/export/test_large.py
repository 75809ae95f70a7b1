"""A generated 200k-message export streams through the importer with bounded memory."""

from __future__ import annotations

import gc
from pathlib import Path

import psutil

from eventlog import EventLog
from ingest.export import ExportImporter, ImportProgress
from tests.ingest.export.generate import write_single_chat_export
from tests.ingest.export.log_sink import LogSink

MESSAGES = 200_000
# Parsed whole, this file would take well over 1 GB of Python objects (dicts of ~15 keys per message);
# streamed, the importer holds one batch of events, the chat's known ids and the parser's buffer.
MAX_RSS_GROWTH_MB = 50


async def test_large_export_streams_with_bounded_memory(
    event_log: EventLog, tmp_path: Path
) -> None:
    path = write_single_chat_export(tmp_path / "result.json", messages=MESSAGES)
    file_mb = path.stat().st_size / 2**20
    process = psutil.Process()
    gc.collect()
    baseline = process.memory_info().rss
    peak = baseline

    def sample(_: ImportProgress) -> None:
        nonlocal peak
        peak = max(peak, process.memory_info().rss)

    sink = LogSink(event_log)
    progress = await ExportImporter(
        log=event_log, sink=sink, account="main", batch_size=4000, on_progress=sample
    ).run(path)
    growth_mb = (peak - baseline) / 2**20
    assert progress.imported == MESSAGES and sink.appended == MESSAGES + 1
    assert progress.bytes_read == progress.total_bytes
    assert file_mb > MAX_RSS_GROWTH_MB  # bigger than the budget: only streaming keeps within it
    assert growth_mb < MAX_RSS_GROWTH_MB, (
        f"RSS grew {growth_mb:.0f} MB importing a {file_mb:.0f} MB export"
    )
