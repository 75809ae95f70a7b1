"""Helpers for the append-path tests: a sink on a private spool, reading back the log, a fake clock."""

from __future__ import annotations

import errno
from pathlib import Path

from eventlog import EventLog, Record
from ingest.durable.deadletter import DeadLetterFile
from ingest.durable.sink import DurableSink
from ingest.durable.spool import Spool
from schemas.codec import Codec
from schemas.events import Event


def make_sink(data_dir: Path, log: EventLog | None, **kwargs: object) -> DurableSink:
    """A sink with the spool and dead-letter file under ``data_dir``."""
    return DurableSink(
        spool=Spool(data_dir / "spool", codec=Codec(), fsync_every=16),
        dead_letters=DeadLetterFile(data_dir / "dead-letter" / "spool.jsonl"),
        log=log,
        **kwargs,  # type: ignore[arg-type]
    )


async def read_events(log: EventLog) -> list[Event]:
    """Every event in the log, in stream order."""
    out: list[Event] = []
    async for batch in log.read(1):
        for record in batch:
            assert isinstance(record, Record), record
            out.append(record.event)
    return out


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fill_disk(directory: Path) -> Path:
    """Write a file in ``directory`` until its file system is full; delete it to free the space."""
    filler = directory / "filler"
    chunk = b"\0" * 4096
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    return filler
