"""Sending commands to ingest and the projector, with their failures as API errors."""

from __future__ import annotations

from api.errors import ServiceUnavailable
from eventlog import EventLog, EventLogError
from eventlog.commands import NoCommandHandler, send_command
from schemas.commands import Command, CommandReply


async def command(
    event_log: EventLog, subject: str, cmd: Command, *, timeout_s: float, service: str
) -> CommandReply:
    """Send ``cmd`` and return the reply; ``ServiceUnavailable`` when nobody answers in time."""
    try:
        return await send_command(event_log.nats_client, subject, cmd, timeout_s=timeout_s)
    except NoCommandHandler as e:
        raise ServiceUnavailable(f"{service} is not running") from e
    except EventLogError as e:
        raise ServiceUnavailable(f"{service} did not acknowledge in time") from e
