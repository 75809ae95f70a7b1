"""Commands over NATS request/reply: the typed requester and server behind ``EventLog.request/serve``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

import msgspec
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from eventlog.errors import EventLogError, EventLogUnavailable
from schemas.commands import Command, CommandReply

log = logging.getLogger(__name__)

_command_decoder: Final = msgspec.json.Decoder(Command)
_reply_decoder: Final = msgspec.json.Decoder(CommandReply)
_encoder: Final = msgspec.json.Encoder()

CommandHandler = Callable[[Command], Awaitable[CommandReply]]


class NoCommandHandler(EventLogError):
    """Nobody is serving that command subject (the service is not running)."""


async def send_command(
    client: Client, subject: str, command: Command, *, timeout_s: float = 5.0
) -> CommandReply:
    """Send ``command`` and wait for its reply (use ``EventLog.request``)."""
    try:
        msg = await client.request(subject, _encoder.encode(command), timeout=timeout_s)
    except nats.errors.NoRespondersError as e:
        raise NoCommandHandler(f"no service handles {subject}") from e
    except (nats.errors.TimeoutError, TimeoutError) as e:
        raise EventLogUnavailable(f"no reply on {subject} within {timeout_s}s") from e
    except nats.errors.Error as e:
        raise EventLogUnavailable(f"command on {subject} failed: {type(e).__name__}") from e
    try:
        return _reply_decoder.decode(msg.data)
    except msgspec.DecodeError as e:
        raise EventLogError(f"unreadable reply on {subject}") from e


class CommandServer:
    """Serves commands on a subject (wildcards allowed) with one async handler (``EventLog.serve``)."""

    def __init__(
        self, client: Client, subject: str, handler: CommandHandler, *, queue: str = ""
    ) -> None:
        self._client = client
        self._subject = subject
        self._handler = handler
        self._queue = queue
        self._sub: Subscription | None = None

    async def start(self) -> None:
        """Begin serving; ``EventLogUnavailable`` when the connection cannot subscribe (closed)."""
        try:
            self._sub = await self._client.subscribe(
                self._subject, queue=self._queue, cb=self._on_msg
            )
        except nats.errors.ConnectionClosedError as e:
            raise EventLogUnavailable(f"cannot serve {self._subject}: the log is closed") from e
        except nats.errors.Error as e:
            raise EventLogUnavailable(f"cannot serve {self._subject}: {type(e).__name__}") from e

    async def stop(self) -> None:
        """Stop serving (in-flight handlers finish)."""
        if self._sub is not None:
            try:
                await asyncio.wait_for(self._sub.unsubscribe(), timeout=2)
            except (nats.errors.Error, TimeoutError):
                pass
            self._sub = None

    async def _on_msg(self, msg: Msg) -> None:
        try:
            command = _command_decoder.decode(msg.data)
        except msgspec.DecodeError as e:
            reply = CommandReply(ok=False, message=f"bad command: {e}")
        else:
            try:
                reply = await self._handler(command)
            except EventLogError as e:
                reply = CommandReply(ok=False, message=str(e))
        if msg.reply:
            try:
                await msg.respond(_encoder.encode(reply))
            except nats.errors.Error as e:
                log.warning("command reply not sent: %s", type(e).__name__)
