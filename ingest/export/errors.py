"""Errors of the Telegram Desktop export import; one base class, subclasses carry the position."""

from __future__ import annotations

from ingest.errors import IngestError


class ExportError(IngestError):
    """Base class of every error raised by ``ingest.export``."""


class MalformedExport(ExportError):
    """The file is not JSON, or not shaped like a Telegram Desktop export; names where it went wrong.

    ``byte_offset`` counts bytes from the start of the file (exact for syntax errors, the end of the
    last chunk read for structure errors); ``json_path`` is where in the document (``chats.list[2].messages``).
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str,
        byte_offset: int | None = None,
        line: int | None = None,
        json_path: str | None = None,
    ) -> None:
        where = [f"file {path}"]
        if byte_offset is not None:
            where.append(f"byte offset {byte_offset}")
        if line is not None:
            where.append(f"line {line}")
        if json_path:
            where.append(f"at {json_path}")
        super().__init__(f"malformed export: {reason} ({', '.join(where)})")
        self.reason = reason
        self.path = path
        self.byte_offset = byte_offset
        self.line = line
        self.json_path = json_path


class UnmappableMessage(ExportError):
    """One message of the export cannot become an event; it is reported, counted and skipped."""

    def __init__(self, reason: str, *, message_id: object = None) -> None:
        super().__init__(reason if message_id is None else f"message {message_id}: {reason}")
        self.reason = reason
        self.message_id = message_id
