"""What the log hands out: our own records, never ``nats`` messages."""

from __future__ import annotations

import msgspec

from schemas.events import AnyEvent


class RawRecord(msgspec.Struct, frozen=True, gc=False):
    """A stored payload at stream position ``seq``, not decoded."""

    seq: int
    subject: str
    data: bytes


class Record(msgspec.Struct, frozen=True, gc=False):
    """A decoded event at stream position ``seq``."""

    seq: int
    subject: str
    event: AnyEvent


class BadRecord(msgspec.Struct, frozen=True, gc=False):
    """A stored payload that could not be decoded; ``error`` says why."""

    seq: int
    subject: str
    data: bytes
    error: str


class AppendResult(msgspec.Struct, frozen=True):
    """Where an event landed; ``duplicate`` means it was already stored (same ``event_id``)."""

    seq: int
    duplicate: bool = False


class StreamInfo(msgspec.Struct, frozen=True, kw_only=True):
    """The state of the log's stream."""

    name: str
    first_seq: int
    last_seq: int
    messages: int
    bytes: int
    consumers: int
    subjects: tuple[str, ...]
    duplicate_window_s: float
    storage: str = "file"
    retention: str = "limits"
    replicas: int = 1
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    leader: str | None = None  # the cluster's stream leader (None on a single server)
