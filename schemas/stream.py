"""The log's JetStream stream configuration, as data."""

from __future__ import annotations

from typing import Final

import msgspec

from schemas.subjects import ALL_SUBJECTS

STREAM_NAME: Final = "TELEGRAM"
# NATS default duplicate window is 2 min; dedup ids cost ~140 B each in server memory, and
# retried appends happen within seconds, so 2 min covers them
# (docs/decisions/006-dedup-window-and-idempotent-projections.md).
# Beyond the window the projectors are idempotent anyway.
DEFAULT_DUPLICATE_WINDOW_S: Final = 120.0
# The stream's metadata key holding the stack id: generated when the operator first ensures the
# stream, recorded in the database at migrate time, checked by every service on connect
# (docs/decisions/029-stack-identity.md).
STACK_ID_KEY: Final = "aaltohub_stack_id"


class StreamSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Stream settings for the log: file storage, keep forever, reject when full, no deletes."""

    name: str = STREAM_NAME
    subjects: tuple[str, ...] = (ALL_SUBJECTS,)
    duplicate_window_s: float = DEFAULT_DUPLICATE_WINDOW_S
    max_bytes: int = (
        -1
    )  # unlimited; with discard=new a cap fails loudly instead of dropping history
    max_msg_size: int = 8 * 1024 * 1024
    replicas: int = 1
    # deny_delete / deny_purge cannot be unset once the stream exists (nats.docs streams.md).
    deny_delete: bool = True
    deny_purge: bool = True
    storage: str = "file"
    retention: str = "limits"
    discard: str = "new"
    max_age_s: float = 0.0  # keep forever
    # Atomic batch publish (nats-server >= 2.12, ADR-50): appends commit up to 1,000 events with one
    # ack and one fsync. Settable on an existing stream; ignored where the server is older.
    allow_atomic: bool = True
