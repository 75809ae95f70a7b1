"""Commands: imperative requests sent over NATS request/reply (never stored in the log)."""

from __future__ import annotations

from typing import Literal

import msgspec


class TriggerCrawl(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="trigger_crawl"
):
    """Ask ingest to run a backfill or a gap-fill of one chat now."""

    chat_id: int
    mode: Literal["backfill", "gapfill"]
    requested_by: str | None = None


class RestartCrawler(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="restart_crawler"
):
    """Ask ingest to reconnect its Telegram clients and restart its background tasks."""

    requested_by: str | None = None


class ReportStatus(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="report_status"
):
    """Ask ingest for its live status (connected, spool depth, counters)."""


class RetryDeadLetters(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="retry_dead_letters"
):
    """Ask the projector to re-apply dead letters (the given ids, or every unresolved one)."""

    dead_letter_ids: tuple[int, ...] = ()
    all_unresolved: bool = False
    requested_by: str | None = None


Command = TriggerCrawl | RestartCrawler | ReportStatus | RetryDeadLetters


class CommandReply(msgspec.Struct, frozen=True, kw_only=True):
    """The acknowledgement of a command: ``ok`` and a message, plus optional status data."""

    ok: bool
    message: str = ""
    data: dict[str, str | int | float | bool | None] = msgspec.field(default_factory=dict)
