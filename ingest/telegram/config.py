"""Crawling knobs of one Telegram account worker."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.telegram.supervisor import ReconnectPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerConfig:
    """Crawling knobs of one account worker (from ``Settings``' ingest section)."""

    backfill_days: float = 14.0
    backfill_batch: int = 200
    backfill_pause_s: float = 1.5
    discovery_interval_s: float = 300.0
    gapfill_interval_s: float = 1800.0
    gapfill_window_s: float = 3600.0
    gapfill_max_messages: int = 500
    chat_kinds: tuple[str, ...] = ("group", "supergroup", "channel")
    delete_map_days: float = 14.0
    entity_ttl_s: float = 86400.0
    max_flood_wait_s: int = 3600
    retry_attempts: int = 5
    request_timeout_s: float = 180.0
    connection_check_s: float = 5.0
    media_types: tuple[str, ...] = ()
    media_max_bytes: int = 20 * 1024 * 1024
    reconnect: ReconnectPolicy = field(default_factory=ReconnectPolicy)
    catchup_interval_s: float = 900.0  # keeps the stored update state recent while connected
    catchup_pause_s: float = 1.5  # between history pages when a difference is too long
