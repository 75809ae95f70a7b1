"""Errors raised while decoding records of the log."""

from __future__ import annotations


class SchemaError(Exception):
    """Base class: a record could not be turned into a current event."""


class MalformedEventError(SchemaError):
    """The payload is not a valid encoding of any event (bad JSON, wrong field types)."""


class UnknownKindError(SchemaError):
    """The payload names an event kind this code does not know (written by newer code?)."""

    def __init__(self, kind: object) -> None:
        super().__init__(f"unknown event kind {kind!r}")
        self.kind = kind


class NewerSchemaError(SchemaError):
    """The payload has a schema version newer than this code understands."""

    def __init__(self, kind: str, version: int, supported: int) -> None:
        super().__init__(
            f"event kind {kind!r} has schema_version {version}; this code reads up to {supported}"
        )
        self.kind = kind
        self.version = version
        self.supported = supported
