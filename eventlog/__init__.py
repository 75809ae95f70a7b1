"""The log: JetStream as an append-only, replayable event log. No Telegram or SQL knowledge."""

from eventlog.commands import CommandHandler, CommandServer, NoCommandHandler
from eventlog.errors import (
    AppendFailed,
    AppendRejected,
    EventLogAuthFailed,
    EventLogClosed,
    EventLogError,
    EventLogUnavailable,
    ForeignStream,
    ReadFailed,
    StreamConfigError,
)
from eventlog.log import EventLog
from eventlog.records import AppendResult, BadRecord, RawRecord, Record, StreamInfo

__all__ = [
    "AppendFailed",
    "AppendRejected",
    "AppendResult",
    "BadRecord",
    "CommandHandler",
    "CommandServer",
    "EventLog",
    "EventLogAuthFailed",
    "EventLogClosed",
    "EventLogError",
    "EventLogUnavailable",
    "ForeignStream",
    "NoCommandHandler",
    "RawRecord",
    "ReadFailed",
    "Record",
    "StreamConfigError",
    "StreamInfo",
]
