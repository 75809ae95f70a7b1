"""Progress bar (on a terminal) and the plain summary of an import."""

from __future__ import annotations

import time
from typing import Final, TextIO

from ingest.export.summary import ImportProgress, SkippedMessage

_WIDTH: Final = 24


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class ProgressBar:
    """A one-line bar on ``stream`` (stderr): bytes read, messages, messages/s; redrawn at most 5x a second."""

    def __init__(self, stream: TextIO, *, interval_s: float = 0.2) -> None:
        self._stream = stream
        self._interval_s = interval_s
        self._last = 0.0

    def __call__(self, progress: ImportProgress) -> None:
        now = time.monotonic()
        if now - self._last < self._interval_s:
            return
        self._last = now
        self._draw(progress)

    def _draw(self, progress: ImportProgress) -> None:
        total = max(progress.total_bytes, 1)
        fraction = min(progress.bytes_read / total, 1.0)
        filled = int(fraction * _WIDTH)
        bar = "#" * filled + "-" * (_WIDTH - filled)
        self._stream.write(
            f"\r[{bar}] {fraction:6.1%}  {_size(progress.bytes_read)}/{_size(progress.total_bytes)}  "
            f"{progress.messages:,} msgs  {progress.messages_per_s:,.0f} msgs/s  "
            f"imported {progress.imported:,}  present {progress.already_present:,}  skipped {progress.skipped:,}"
        )
        self._stream.flush()

    def finish(self, progress: ImportProgress) -> None:
        """Draw the final state and end the line."""
        self._draw(progress)
        self._stream.write("\n")
        self._stream.flush()


def format_skip(skipped: SkippedMessage) -> str:
    """One line reporting a skipped message."""
    chat = "?" if skipped.chat_id is None else str(skipped.chat_id)
    return f"skipped: chat {chat} message {skipped.message_id}: {skipped.reason}"


def format_summary(progress: ImportProgress) -> str:
    """The plain summary: chats, messages imported, already present, skipped with reasons."""
    lines = [
        f"chats: {progress.chats}"
        + (f" (+{progress.chats_skipped} without a usable id)" if progress.chats_skipped else ""),
        f"messages read: {progress.messages}",
        f"imported: {progress.imported}",
        *(
            [
                f"not yet in the log: {progress.spooled} (in the import spool; the next "
                "`aaltohub import` appends them first)"
            ]
            if progress.spooled
            else []
        ),
        f"already present: {progress.already_present}",
        f"skipped: {progress.skipped}",
    ]
    if progress.failed:
        lines.append(f"failed (not stored): {progress.failed}")
    for reason, count in sorted(progress.skip_reasons.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {count} × {reason}")
    lines.extend(f"warning: {w}" for w in progress.warnings)
    lines.append(
        f"time: {progress.elapsed_s:.1f} s ({progress.messages_per_s:,.0f} messages/s, "
        f"{_size(progress.bytes_read)} read)"
    )
    return "\n".join(lines)
