"""Sending commands to ingest and the projector, with their failures as API errors."""

from __future__ import annotations

from api.errors import ServiceUnavailable
from eventlog import EventLog, EventLogError, NoCommandHandler
from schemas.commands import (
    CommandReply,
    IngestCommand,
    LoginCommand,
    ProjectorCommand,
    ingest_subject,
    login_subject,
    projector_subject,
)

NO_LOGINS = (
    "No ingest service can add Telegram accounts right now: ingest is not running, or it runs "
    "without TELEGRAM_API_ID, TELEGRAM_API_HASH and MASTER_KEY (set them and restart ingest)."
)


async def ask_ingest(
    event_log: EventLog, cmd: IngestCommand, *, account: str | None, timeout_s: float
) -> CommandReply:
    """Send ``cmd`` to the worker of ``account`` (None: every account); ``ServiceUnavailable``
    when no ingest serves it or none answers in time."""
    return await _ask(event_log, ingest_subject(cmd, account), cmd, timeout_s, "ingest")


async def ask_projector(
    event_log: EventLog, cmd: ProjectorCommand, *, timeout_s: float
) -> CommandReply:
    """Send ``cmd`` to the projector; ``ServiceUnavailable`` when it does not answer in time."""
    return await _ask(event_log, projector_subject(cmd), cmd, timeout_s, "projector")


async def ask_login(event_log: EventLog, cmd: LoginCommand, *, timeout_s: float) -> CommandReply:
    """Send a login command to the ingest that serves logins; ``ServiceUnavailable`` (in words)
    when none does or it does not answer in time."""
    try:
        return await event_log.request(login_subject(cmd), cmd, timeout_s=timeout_s)
    except NoCommandHandler as e:
        raise ServiceUnavailable(NO_LOGINS) from e
    except EventLogError as e:
        raise ServiceUnavailable(
            "Ingest did not answer in time (Telegram may be slow to reach); try again."
        ) from e


async def _ask(
    event_log: EventLog,
    subject: str,
    cmd: IngestCommand | ProjectorCommand,
    timeout_s: float,
    service: str,
) -> CommandReply:
    try:
        return await event_log.request(subject, cmd, timeout_s=timeout_s)
    except NoCommandHandler as e:
        raise ServiceUnavailable(f"{service} is not running") from e
    except EventLogError as e:
        raise ServiceUnavailable(f"{service} did not acknowledge in time") from e
