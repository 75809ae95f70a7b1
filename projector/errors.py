"""Errors of the projector; third-party exceptions are translated at the sink boundary."""

from __future__ import annotations


class ProjectionError(Exception):
    """Base class of every error raised by ``projector``."""


class ProjectionUnavailable(ProjectionError):
    """The target store is unreachable or dropped the connection (transient: retry, never dead-letter)."""


class CheckpointMoved(ProjectionError):
    """The stored checkpoint is not where this runner left it (a rebuild was swapped in); resume from ``seq``."""

    def __init__(self, name: str, *, expected: int, seq: int) -> None:
        super().__init__(f"checkpoint {name} is at {seq}, expected {expected}")
        self.name = name
        self.expected = expected
        self.seq = seq


class ApplyFailed(ProjectionError):
    """One event could not be applied (deterministic): it becomes a dead letter."""

    def __init__(self, reason: str, *, seq: int) -> None:
        super().__init__(f"seq {seq}: {reason}")
        self.seq = seq
        self.reason = reason


class RebuildError(ProjectionError):
    """A rebuild could not complete or swap."""
