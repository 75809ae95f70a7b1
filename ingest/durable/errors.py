"""Errors of the durable append path (buffer, breaker, spool, sink); all under ``IngestError``."""

from __future__ import annotations

from pathlib import Path

from ingest.errors import IngestError


class AppendPathError(IngestError):
    """Base class of every error raised by the durable append path."""


class SpoolError(AppendPathError):
    """The local spool could not be written or read (disk full, permissions)."""

    def __init__(self, reason: str, *, path: Path | None = None) -> None:
        super().__init__(reason if path is None else f"{reason} ({path})")
        self.path = path


class SinkClosed(AppendPathError):
    """An event was submitted after the sink was closed (it was not accepted)."""
