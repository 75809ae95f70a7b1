"""Commands: imperative requests sent over NATS request/reply (never stored in the log).

The subject of a command is derived from its type, here and nowhere else, so the API (sender) and
ingest or the projector (servers) cannot disagree on a name. Each service has one subject prefix
(``aaltohub.cmd.ingest.>``, ``aaltohub.cmd.projector.>``) so NATS permissions can be granted per
service. Ingest commands name the Telegram account they are for (the ``account`` of its events and
of ``telegram_groups``), or ``all``.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from schemas.status import CrawlerStatus, ProjectorStatus, RetryOutcome
from schemas.subjects import validate_account

COMMAND_PREFIX: Final = "aaltohub.cmd"
INGEST_COMMANDS: Final = f"{COMMAND_PREFIX}.ingest"
PROJECTOR_COMMANDS: Final = f"{COMMAND_PREFIX}.projector"
ALL_ACCOUNTS: Final = "all"


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
    """Ask a service for its live status (ingest: ``CrawlerStatus``; projector: ``ProjectorStatus``)."""


class RetryDeadLetters(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="retry_dead_letters"
):
    """Ask the projector to re-apply dead letters (the given ids, or every unresolved one)."""

    dead_letter_ids: tuple[int, ...] = ()
    all_unresolved: bool = False
    requested_by: str | None = None


Command = TriggerCrawl | RestartCrawler | ReportStatus | RetryDeadLetters
IngestCommand = TriggerCrawl | RestartCrawler | ReportStatus
ProjectorCommand = RetryDeadLetters | ReportStatus


class CommandReply(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The answer to a command: ``ok`` and a message, plus the typed result where there is one."""

    ok: bool
    message: str = ""
    crawler: CrawlerStatus | None = None  # ingest's answer to ReportStatus
    projector: ProjectorStatus | None = None  # the projector's answer to ReportStatus
    retry: RetryOutcome | None = None  # the projector's answer to RetryDeadLetters


def verb_of(command: Command) -> str:
    """The subject token of a command: its tag (``trigger_crawl``, ``report_status``, …)."""
    tag = type(command).__struct_config__.tag
    assert isinstance(tag, str)
    return tag


def _target(account: str | None) -> str:
    if account is None:
        return ALL_ACCOUNTS
    if account == ALL_ACCOUNTS:
        raise ValueError(f"{ALL_ACCOUNTS!r} is reserved for commands to every account")
    return validate_account(account)


def ingest_subject(command: IngestCommand, account: str | None = None) -> str:
    """Where to send an ingest command: to the worker of ``account``, or to every account."""
    return f"{INGEST_COMMANDS}.{_target(account)}.{verb_of(command)}"


def ingest_serve_subject(account: str | None) -> str:
    """What ingest subscribes to for one account (or ``None``: the commands for all accounts)."""
    return f"{INGEST_COMMANDS}.{_target(account)}.>"


def projector_subject(command: ProjectorCommand) -> str:
    """Where to send a projector command (one queue group serves it)."""
    return f"{PROJECTOR_COMMANDS}.{verb_of(command)}"


PROJECTOR_SERVE_SUBJECT: Final = f"{PROJECTOR_COMMANDS}.>"
