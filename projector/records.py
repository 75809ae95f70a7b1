"""What a projection receives and hands out: decoded records, dead letters, and the Projection seam."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec

from eventlog import RawRecord
from schemas.codec import Codec
from schemas.events import AnyEvent


class Decoded(msgspec.Struct, frozen=True, gc=False):
    """A record that decoded into an event (a Struct: built once per replayed event, cheaply)."""

    seq: int
    subject: str
    data: bytes
    event: AnyEvent


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record a projection could not decode or apply, with the reason."""

    seq: int
    subject: str
    data: bytes
    error: str
    event_id: str | None = None
    chat_id: int | None = None


def decode_batch(
    codec: Codec, batch: Sequence[RawRecord]
) -> tuple[list[Decoded], list[DeadLetter]]:
    """Decode raw records; undecodable ones become dead letters (never raises)."""
    events, errors = codec.decode_many([raw.data for raw in batch])
    if not errors:
        return [
            Decoded(raw.seq, raw.subject, raw.data, event)
            for raw, event in zip(batch, events, strict=True)
        ], []
    good: list[Decoded] = []
    bad: list[DeadLetter] = []
    decoded = iter(events)
    for index, raw in enumerate(batch):
        error = errors.get(index)
        if error is None:
            good.append(Decoded(raw.seq, raw.subject, raw.data, next(decoded)))
        else:
            bad.append(
                DeadLetter(raw.seq, raw.subject, raw.data, f"{type(error).__name__}: {error}")
            )
    return good, bad


def dead_letter_of(record: Decoded, error: str) -> DeadLetter:
    """A dead letter for a decoded record that failed to apply."""
    return DeadLetter(
        record.seq, record.subject, record.data, error, record.event.event_id, record.event.chat_id
    )


class Projection(Protocol):
    """A sink built from the log: ``open`` returns the checkpoint; ``apply`` writes a batch and its checkpoint."""

    name: str
    subjects: Sequence[str] | None

    async def open(self) -> int:
        """Connect (again) and return the last applied seq."""
        ...

    def prepare(self, batch: Sequence[RawRecord]) -> object:
        """CPU-only work for a batch (decode, rows), run while the previous batch is being written."""
        ...

    async def apply(
        self, batch: Sequence[RawRecord], *, caught_up: bool, prepared: object = None
    ) -> None:
        """Apply a batch in seq order with its checkpoint; dead-letter what cannot be applied."""
        ...

    async def reapply(self, record: RawRecord) -> str | None:
        """Apply one dead-lettered record again with the same merge rules; None if it worked, else the error."""
        ...

    async def close(self) -> None:
        """Flush and close."""
        ...
