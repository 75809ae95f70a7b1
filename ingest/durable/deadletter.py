"""The local dead-letter file of the append path: events the log refused for good, one JSON line each."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from ingest.durable.errors import SpoolError


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """One refused event: why, when, and its encoded payload (as text when it is valid UTF-8)."""

    at: datetime
    event_id: str | None
    reason: str
    payload: str


class DeadLetterFile:
    """Appends ``DeadLetter`` lines to ``path`` (fsync'd: these events exist nowhere else)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._encoder = msgspec.json.Encoder()

    def write(self, *, event_id: str | None, reason: str, payload: bytes) -> None:
        """Record one refused event durably."""
        letter = DeadLetter(
            at=datetime.now(UTC),
            event_id=event_id,
            reason=reason,
            payload=payload.decode("utf-8", "replace"),
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, self._encoder.encode(letter) + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            raise SpoolError(f"cannot write dead letter: {e.strerror}", path=self.path) from e
        self.count += 1

    def read(self) -> list[DeadLetter]:
        """All dead letters recorded so far."""
        if not self.path.exists():
            return []
        decoder = msgspec.json.Decoder(DeadLetter)
        return [
            decoder.decode(line) for line in self.path.read_bytes().splitlines() if line.strip()
        ]
