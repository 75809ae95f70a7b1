"""The log as the composition root sees it: the stream spec from settings, and opening the log."""

from __future__ import annotations

from aaltohub.runtime import resolve_nats_url
from aaltohub.settings import Settings
from eventlog import EventLog
from eventlog.permissions import Role
from schemas.stream import StreamSpec


def stream_spec(settings: Settings) -> StreamSpec:
    """The stream configuration selected by the settings."""
    return StreamSpec(
        name=settings.stream_name,
        duplicate_window_s=settings.stream_duplicate_window_s,
        replicas=settings.stream_replicas,
    )


async def open_event_log(
    settings: Settings,
    *,
    name: str,
    role: Role,
    ensure: bool = False,
    connect_timeout_s: float = 5.0,
) -> EventLog:
    """Connect to NATS_URL or the running stack's server as ``role``; raises ``StackNotRunning``/``EventLogError``."""
    return await EventLog.connect(
        resolve_nats_url(settings, role=role),
        spec=stream_spec(settings),
        name=name,
        connect_timeout_s=connect_timeout_s,
        ensure=ensure,
    )
