"""The status of the running services as API bodies: pydantic mirrors of ``schemas.status``.

The services report msgspec Structs (``CrawlerStatus``, ``ProjectorStatus``); FastAPI documents
pydantic models. Each model here has the same fields as its Struct (a test checks they do not
drift) and is built from the Struct's builtins, so no field is renamed on the way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec
from pydantic import BaseModel, Field

from schemas.status import CrawlerStatus


class FloodWaitInfo(BaseModel):
    """The last flood wait Telegram asked of an account."""

    seconds: int
    method: str
    at: datetime


class CatchUpInfo(BaseModel):
    """An account's catch-up after a (re)connect."""

    state: Literal["idle", "running", "failed"]
    passes: int
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_new: int = 0
    last_edited: int = 0
    last_deleted: int = 0
    last_error: str | None = None


class AccountRuntime(BaseModel):
    """One Telegram account (or the demo source) as its ingest worker reports it."""

    account: str
    state: Literal["starting", "connected", "reconnecting", "stopped", "auth_failed"]
    connected: bool
    connected_since: datetime | None = None
    reconnect_attempts: int = Field(description="attempts since the last stable connection")
    reconnects: int = Field(description="successful reconnects since ingest started")
    next_reconnect_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    groups_watched: int
    messages_received: int
    backfills_pending: int
    media_pending: int
    live_failures: int
    flood_waits: int
    last_flood_wait: FloodWaitInfo | None = None
    catch_up: CatchUpInfo | None = None


class SinkRuntime(BaseModel):
    """Ingest's append path: buffer, breaker, spool and counters."""

    buffer_depth: int
    buffer_capacity: int
    spool_records: int
    spool_bytes: int
    breaker: str
    log_connected: bool
    appended: int
    spooled: int
    dead_lettered: int
    last_error: str | None = None
    intake_paused: bool = Field(False, description="disk full: the spool takes nothing")
    spool_write_failures: int = 0
    duplicates: int = Field(0, description="appends the log already held (dedup hits)")


class CrawlerRuntime(BaseModel):
    """What ingest reported about itself; ``running`` is false (and ``message`` says why) when it
    did not answer."""

    running: bool
    message: str | None = None
    demo: bool | None = None
    version: str | None = None
    started_at: datetime | None = None
    uptime_s: float | None = None
    connected_accounts: int = 0
    messages_received: int = 0
    accounts: list[AccountRuntime] = []
    sink: SinkRuntime | None = None

    @classmethod
    def of(cls, status: CrawlerStatus, *, message: str | None = None) -> CrawlerRuntime:
        """The body of a ``CrawlerStatus``."""
        return cls.model_validate(
            {
                **msgspec.to_builtins(status),
                "message": message,
                "connected_accounts": status.connected_accounts,
                "messages_received": sum(a.messages_received for a in status.accounts),
            }
        )

    @classmethod
    def absent(cls, message: str) -> CrawlerRuntime:
        """Ingest did not answer."""
        return cls(running=False, message=message)
