"""Seams between event producers (Telegram workers, the demo source, the importer) and the log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from schemas.commands import Command, CommandReply
from schemas.events import Event
from schemas.status import AccountStatus


class EventSink(Protocol):
    """Where producers put events. ``submit`` never blocks on the network and never drops an event:
    it goes to the in-memory buffer, or to the durable spool when the buffer is full or the log is
    unreachable. ``submit_many`` waits until the events are acknowledged by the log or spooled."""

    def submit(self, event: Event) -> None:
        """Enqueue one event (non-blocking, never lost)."""
        ...

    async def submit_many(self, events: Sequence[Event]) -> None:
        """Enqueue events and wait until each is acked by the log or durably spooled."""
        ...

    @property
    def intake_paused(self) -> bool:
        """True while nothing can be made durable (disk full, log gone): ``submit_many`` waits,
        and producers that cannot wait (live updates) leave their events to a later catch-up."""
        ...


class EventSource(Protocol):
    """A producer of events run by the ingest service (a Telegram account worker, the demo).

    ``name`` is the account its events carry (``Event.account``): commands for that account
    (``schemas.commands.ingest_subject``) reach this source."""

    name: str

    async def run(self, sink: EventSink) -> None:
        """Produce events into ``sink`` until cancelled; on cancel stop intake and return promptly."""
        ...

    async def handle(self, command: Command) -> CommandReply:
        """Handle a command addressed to this source (crawl a chat, restart)."""
        ...

    def status(self) -> AccountStatus:
        """The source's own view of its account (connection, backlog); the service adds what its
        events tell (messages received, flood waits, errors)."""
        ...


class CommandDesk(Protocol):
    """A handler of commands that belong to no running source (the console's Telegram logins)."""

    async def handle(self, command: Command) -> CommandReply:
        """Answer one command; never raises (a failure is a negative reply)."""
        ...

    async def close(self) -> None:
        """Release what open requests hold (connections of unfinished logins)."""
        ...
