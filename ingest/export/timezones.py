"""Local times in older exports: what the file itself says about the offset they were written in.

Telegram Desktop writes ``date`` in the exporting machine's local time without an offset; newer
versions add ``date_unixtime`` (UTC). Without it, the file can still reveal the offset: a message
carrying both fields (their difference), or the ``edited`` stamp some versions wrote on unedited
messages, the Unix epoch in local time (``1970-01-01T05:30:00`` is UTC+05:30). The first such
evidence is used when no ``--tz`` is given (docs/decisions/032-local-times-in-exports.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Final

from ingest.export.errors import MalformedExport
from ingest.export.peers import as_int
from ingest.export.reader import ChatHeader, ExportReader

_EPOCH: Final = datetime(1970, 1, 1)
_MAX_OFFSET: Final = timedelta(hours=14)  # UTC-12 … UTC+14 are the offsets in use
# Messages without evidence read before giving up: the epoch marker, where a version wrote it,
# is on every unedited message, so it shows up at once or not at all.
_SCAN_LIMIT: Final = 10_000


@dataclass(frozen=True)
class Evidence:
    """An offset the file reveals, and where."""

    offset: timedelta
    where: str

    def describe(self) -> str:
        """``UTC+05:30 (message 3 of messages: …)``."""
        return f"{format_offset(self.offset)} ({self.where})"


def format_offset(offset: timedelta) -> str:
    """``UTC+05:30`` / ``UTC-03:00``."""
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _naive(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is None else None


def _plausible(offset: timedelta) -> timedelta | None:
    rounded = timedelta(minutes=round(offset.total_seconds() / 60))
    return rounded if abs(rounded) <= _MAX_OFFSET else None


def evidence_of(raw: object) -> tuple[timedelta, str] | None:
    """The offset one raw message reveals, with what revealed it; None if it reveals none."""
    if not isinstance(raw, dict):
        return None
    local = _naive(raw.get("date"))
    seconds = as_int(raw.get("date_unixtime"))
    if local is not None and seconds is not None and seconds > 0:
        offset = _plausible(local - datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None))
        if offset is not None:
            return offset, f"date {raw.get('date')} with date_unixtime {seconds}"
    edited = _naive(raw.get("edited"))
    edited_seconds = as_int(raw.get("edited_unixtime"))
    if edited is not None and not edited_seconds and abs(edited - _EPOCH) <= _MAX_OFFSET:
        offset = _plausible(edited - _EPOCH)
        if offset is not None:
            return offset, f"edited {raw.get('edited')}, the Unix epoch in local time"
    return None


def revealed_offset(path: Path) -> Evidence | None:
    """The first offset the export at ``path`` reveals (a bounded pre-pass), or None."""
    reader = ExportReader(path)
    scanned = 0
    chats: Iterator[tuple[ChatHeader, Iterator[object]]] = reader.chats()
    try:
        with contextlib.closing(chats):  # type: ignore[type-var]  # a generator has close()
            for header, messages in chats:
                for index, raw in enumerate(messages):
                    found = evidence_of(raw)
                    if found is not None:
                        return Evidence(found[0], f"{header.json_path}[{index}]: {found[1]}")
                    scanned += 1
                    if scanned >= _SCAN_LIMIT:
                        return None
    except MalformedExport:
        return None  # the import itself reports it, after storing what precedes it
    return None


def choose_zone(given: tzinfo | None, evidence: Evidence | None) -> tuple[tzinfo, str]:
    """The zone to read dates without ``date_unixtime`` in, and why: ``--tz`` when given (noting
    a file that suggests otherwise), else the offset the file reveals, else UTC."""
    if given is None:
        if evidence is None:
            return UTC, "UTC (the default: pass --tz with the exporting machine's zone)"
        return timezone(evidence.offset), f"{evidence.describe()}, the offset the file reveals"
    reason = f"--tz {given}"
    if evidence is not None:
        used = datetime(2000, 1, 1, tzinfo=given).utcoffset()  # a named zone's DST aside
        if used is not None and used != evidence.offset:
            reason += (
                f"; note the file suggests {evidence.describe()}, but --tz {given} is "
                f"{format_offset(used)} there"
            )
    return given, reason
