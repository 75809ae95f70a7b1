"""Errors of the log; no ``nats`` exception escapes this package."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.events import Event


class EventLogError(Exception):
    """Base class of every error raised by ``eventlog``."""


class EventLogUnavailable(EventLogError):
    """The NATS server could not be reached within the deadline."""


class EventLogAuthFailed(EventLogUnavailable):
    """The NATS server refused the connection's credentials (none, wrong user or password)."""


class StreamConfigError(EventLogError):
    """The stream could not be created or updated (e.g. an immutable setting differs)."""


class ForeignStream(EventLogError):
    """The stream reached is not this stack's (another stack id, or a configuration not ours)."""


class AppendFailed(EventLogError):
    """Some events were not acknowledged by the deadline; they may or may not be stored.

    Retrying them with the same ``event_id`` is always safe (dedup + idempotent projections).
    """

    def __init__(self, unacked: Sequence[Event], reason: str) -> None:
        super().__init__(f"{len(unacked)} event(s) not acknowledged: {reason}")
        self.unacked = list(unacked)
        self.reason = reason


class EventLogClosed(AppendFailed):
    """An append came after ``EventLog.close``: none of ``unacked`` was sent (or, when the close came
    during the append, their acks were lost with the connection); append them to an open log."""

    def __init__(self, unacked: Sequence[Event]) -> None:
        super().__init__(unacked, "the log is closed")


class AppendRejected(EventLogError):
    """The server refused an append for good (stream full with discard=new, message too large)."""

    def __init__(self, event_id: str, subject: str, reason: str) -> None:
        super().__init__(f"append of {event_id} to {subject} rejected: {reason}")
        self.event_id = event_id
        self.subject = subject
        self.reason = reason


class ReadFailed(EventLogError):
    """Reading the stream failed (consumer could not be created, stream missing)."""

    def __init__(self, reason: str, *, seq: int | None = None) -> None:
        super().__init__(reason if seq is None else f"{reason} (at seq {seq})")
        self.seq = seq
