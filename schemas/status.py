"""Status reports: what ingest and the projector say about themselves, as typed Structs.

Ingest answers ``ReportStatus`` with a ``CrawlerStatus`` (one ``AccountStatus`` per Telegram account
or demo source, and the append path's ``SinkStatus``); the projector answers with a
``ProjectorStatus``. The API shows them in ``/admin/status`` and the console renders them, so
both sides decode the same types.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

AccountState = Literal[
    "starting",  # the worker is loading what the log knows, not connected yet
    "connected",  # connected and authorized; updates flow
    "reconnecting",  # the connection is lost; the supervisor retries with backoff
    "stopped",  # the service is shutting down
    "auth_failed",  # the session cannot be used (revoked, banned): needs `aaltohub login`
]
CatchUpState = Literal["idle", "running", "failed"]


class FloodWaitStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The last flood wait Telegram asked of an account."""

    seconds: int
    method: str
    at: datetime


class CatchUpStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The account's catch-up after a (re)connect: what the last pass recovered."""

    state: CatchUpState = "idle"
    passes: int = 0
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_new: int = 0
    last_edited: int = 0
    last_deleted: int = 0
    last_error: str | None = None


class AccountStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One Telegram account (or the demo source) as its ingest worker sees it."""

    account: str
    state: AccountState = "starting"
    connected: bool = False
    connected_since: datetime | None = None
    reconnect_attempts: Annotated[
        int, Meta(description="attempts since the last stable connection")
    ] = 0
    reconnects: Annotated[int, Meta(description="successful reconnects since ingest started")] = 0
    next_reconnect_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    groups_watched: int = 0
    messages_received: int = 0
    backfills_pending: int = 0
    media_pending: int = 0
    live_failures: int = 0
    flood_waits: int = 0
    last_flood_wait: FloodWaitStatus | None = None
    catch_up: CatchUpStatus | None = None


class SinkStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The append path: in-memory buffer, circuit breaker, durable spool and counters."""

    buffer_depth: int
    buffer_capacity: int
    spool_records: int
    spool_bytes: int
    breaker: str
    log_connected: bool
    appended: int
    spooled: int
    dead_lettered: int
    last_error: str | None
    intake_paused: Annotated[
        bool, Meta(description="the spool cannot be written (disk full) and the log takes nothing")
    ] = False
    spool_write_failures: Annotated[
        int, Meta(description="spool writes that failed since start (a counter)")
    ] = 0
    duplicates: Annotated[
        int, Meta(description="appends the log already held: its dedup answered (a counter)")
    ] = 0


class CrawlerStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Everything ingest reports about itself (answer to ``ReportStatus``)."""

    running: bool
    demo: bool
    version: str | None = None
    started_at: datetime | None = None
    uptime_s: float = 0.0
    accounts: tuple[AccountStatus, ...] = ()
    sink: SinkStatus | None = None

    @property
    def connected_accounts(self) -> int:
        """How many accounts are connected right now."""
        return sum(1 for a in self.accounts if a.connected)


class ProjectionStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One running projection: its checkpoint, lag behind the log and rate."""

    name: str
    seq: int
    lag: int
    events_per_s: float = 0.0
    retries: int = 0
    last_error: str | None = None


class ProjectorStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The projections this projector runs (only enabled ones exist here)."""

    projections: tuple[ProjectionStatus, ...] = ()


class RetryOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a dead-letter retry did."""

    resolved: int
    failed: int
