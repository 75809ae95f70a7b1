"""``aaltohub import PATH``: import a Telegram Desktop export (``result.json``) into the log."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aaltohub.logging_setup import configure_logging
from aaltohub.runtime import resolve_nats_url
from aaltohub.settings import Settings, load_settings
from aaltohub.stack_file import StackNotRunning
from aaltohub.stream import stream_spec
from eventlog import EventLog, EventLogError
from ingest.durable.sink import DurableSink, build_sink
from ingest.export import ExportError, ExportImporter, ImportProgress, MalformedExport
from ingest.export.progress import ProgressBar, format_skip, format_summary
from ingest.export.summary import SkippedMessage
from schemas.ids import CHANNEL_ID_OFFSET
from schemas.subjects import validate_account

_MAX_SKIP_LINES = 100


def run(args: argparse.Namespace) -> int:
    """Run the import; 0 on success (skipped messages included), 2 for a malformed file, 1 when a
    message could not be stored or the import failed."""
    settings = load_settings()
    configure_logging(settings)
    try:
        tz = None if args.tz is None else ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError):
        print(f"aaltohub import: unknown time zone {args.tz!r}", file=sys.stderr)
        return 1
    account = args.account or (settings.account_names or ["main"])[0]
    try:
        validate_account(account)
    except ValueError as e:
        print(f"aaltohub import: --account: {e}", file=sys.stderr)
        return 1
    try:
        url = resolve_nats_url(settings, role="ingest")
    except StackNotRunning as e:
        print(f"aaltohub import: {e}", file=sys.stderr)
        return 1
    migrated_from = args.migrated_from
    if migrated_from is not None:
        if migrated_from == 0 or migrated_from <= CHANNEL_ID_OFFSET:
            print("aaltohub import: --migrated-from: not a basic group id", file=sys.stderr)
            return 1
        migrated_from = -abs(migrated_from)  # basic groups are marked -id
    return asyncio.run(
        _import(
            args.path,
            settings=settings,
            url=url,
            account=account,
            tz=tz,
            chat_id=args.chat_id,
            migrated_from=migrated_from,
        )
    )


# The importer hands the sink batches of 5,000 and parses up to 4 ahead, so a sink call carries up
# to 20,000 events: about 20 atomic batches in flight (docs/decisions/036-import-throughput.md).
IMPORT_BATCH: Final = 5000
IMPORT_BATCHES_AHEAD: Final = 4


def import_sink(data_dir: Path, log: EventLog) -> DurableSink:
    """The import's durable sink: live ingest's append path with its own spool (one process per
    spool). The export file is the import's own durable copy (a re-run appends nothing twice), so
    events may wait in memory for 5 s, not 250 ms, before the sink spools them."""
    return build_sink(
        data_dir,
        log=log,
        spool_subdir="spool-import",
        batch_size=IMPORT_BATCH * IMPORT_BATCHES_AHEAD,
        buffer_size=2 * IMPORT_BATCH * IMPORT_BATCHES_AHEAD,
        max_memory_s=5.0,
    )


async def settle(sink: DurableSink, progress: ImportProgress, *, stall_s: float = 30.0) -> None:
    """Wait until the log holds everything the import handed the sink; what is still spooled when
    the log stops taking events for ``stall_s`` is counted as not imported."""
    if await sink.wait_drained(stall_s=stall_s):
        return
    left = sink.status()
    progress.spooled = left.spool_records + left.buffer_depth
    progress.imported -= min(progress.spooled, progress.imported)


async def _import(
    path: Path,
    *,
    settings: Settings,
    url: str,
    account: str,
    tz: ZoneInfo | None,
    chat_id: int | None,
    migrated_from: int | None,
) -> int:
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    reported = 0

    def on_skip(skipped: SkippedMessage) -> None:
        nonlocal reported
        reported += 1
        if reported <= _MAX_SKIP_LINES:
            print(format_skip(skipped), file=sys.stderr)

    spec = stream_spec(settings)
    importer: ExportImporter | None = None
    try:
        async with await EventLog.connect(
            url, spec=spec, name="aaltohub-import", ensure=False
        ) as log:
            sink = import_sink(settings.data_path, log)
            await sink.start()
            importer = ExportImporter(
                log=log,
                sink=sink,
                account=account,
                tz=tz,
                chat_id=chat_id,
                migrated_from=migrated_from,
                batch_size=IMPORT_BATCH,
                in_flight=IMPORT_BATCHES_AHEAD,
                on_progress=bar,
                on_skip=on_skip,
            )
            try:
                try:
                    await importer.run(path)
                except MalformedExport:
                    await settle(sink, importer.progress)  # what came before the error counts
                    raise
                await settle(sink, importer.progress)
            finally:
                await sink.close()
                if bar is not None:
                    bar.finish(importer.progress)
    except MalformedExport as e:
        print(f"aaltohub import: {e}", file=sys.stderr)
        print(
            "nothing after that position was imported; fix the file and run the import again "
            "(messages already imported are not appended twice)",
            file=sys.stderr,
        )
        if importer is not None:
            print(format_summary(importer.progress))
        return 2
    except (ExportError, EventLogError) as e:
        print(f"aaltohub import: {e}", file=sys.stderr)
        return 1
    if reported > _MAX_SKIP_LINES:
        print(f"… and {reported - _MAX_SKIP_LINES} more skipped messages", file=sys.stderr)
    assert importer is not None
    print(format_summary(importer.progress))
    if importer.progress.failed:
        print(
            f"aaltohub import: {importer.progress.failed} messages could not be stored "
            "(see the skipped lines above)",
            file=sys.stderr,
        )
        return 1
    return 1 if importer.progress.spooled else 0
