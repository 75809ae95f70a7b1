"""``aaltohub log info`` (stream state) and ``aaltohub log tail`` (decoded events, one per line)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable

import msgspec

from aaltohub.settings import Settings, load_settings
from aaltohub.stack_file import StackNotRunning
from aaltohub.stream import open_event_log
from aaltohub.subcommands.arguments import DEFAULT_TAIL
from eventlog import EventLog, EventLogError, RawRecord
from eventlog.permissions import Role
from schemas.errors import SchemaError
from schemas.events import AnyEvent, Event, MessageDeleted, MessageEdited, MessagePosted, kind_of
from schemas.subjects import chat_subjects

_json: msgspec.json.Encoder = msgspec.json.Encoder()


def run_info(args: argparse.Namespace) -> int:
    """Print the stream state."""
    return _run(load_settings(), _info)


def run_init(args: argparse.Namespace) -> int:
    """Create or update the stream as the operator (compose runs this before the services)."""

    async def init(log: EventLog) -> None:
        await log.ensure_stream()
        print(f"stream {log.stream_name} is ready")

    return _run(load_settings(), init, role="operator")


def run_tail(args: argparse.Namespace) -> int:
    """Print events from the log."""

    async def tail(log: EventLog) -> None:
        await _tail(log, args)

    return _run(load_settings(), tail)


def _run(
    settings: Settings, body: Callable[[EventLog], Awaitable[None]], *, role: Role = "projector"
) -> int:
    async def main() -> None:
        # Reading needs no more than the projector's rights.
        log = await open_event_log(settings, name="aaltohub-cli", role=role)
        try:
            await body(log)
        finally:
            await log.close()

    try:
        asyncio.run(main())
    except (StackNotRunning, EventLogError) as e:
        print(f"aaltohub log: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `aaltohub log tail | head`
        return 0
    return 0


async def _info(log: EventLog) -> None:
    info = await log.info()
    print(f"stream      {info.name}")
    print(f"subjects    {', '.join(info.subjects)}")
    print(f"messages    {info.messages}")
    print(f"first seq   {info.first_seq}")
    print(f"last seq    {info.last_seq}")
    print(f"bytes       {info.bytes}")
    print(f"consumers   {info.consumers}")
    print(f"dedup       {info.duplicate_window_s:g}s")


def matches_kind(kind: str, wanted: str | None) -> bool:
    """True if ``kind`` is ``wanted`` or starts with ``wanted.``."""
    return wanted is None or kind == wanted or kind.startswith(wanted + ".")


async def _tail(log: EventLog, args: argparse.Namespace) -> None:
    limit: int | None = args.limit
    from_seq: int | None = args.from_seq
    if from_seq is None:
        last = (await log.info()).last_seq
        from_seq = max(1, last - (limit or DEFAULT_TAIL) + 1)
        if limit is None and not args.follow:
            limit = DEFAULT_TAIL
    subjects = chat_subjects(args.chat) if args.chat is not None else None
    printed = 0
    async for batch in log.read_raw(from_seq, subjects=subjects, follow=args.follow):
        lines: list[str] = []
        for raw in batch:
            line = render(raw, log, kind=args.kind, as_json=args.json)
            if line is None:
                continue
            lines.append(line)
            printed += 1
            if limit is not None and printed >= limit:
                break
        if lines:
            print("\n".join(lines), flush=True)
        if limit is not None and printed >= limit:
            return


def render(raw: RawRecord, log: EventLog, *, kind: str | None, as_json: bool) -> str | None:
    """One output line for ``raw`` (None if filtered out by ``kind``); undecodable records are shown."""
    try:
        event = log.codec.decode(raw.data)
    except SchemaError as e:
        if kind is not None:
            return None
        error = f"{type(e).__name__}: {e}"
        if as_json:
            body = {
                "seq": raw.seq,
                "subject": raw.subject,
                "error": error,
                "data": raw.data.decode("utf-8", errors="replace"),
            }
            return _json.encode(body).decode()
        return f"{raw.seq:>8}  BAD {raw.subject}: {error}"
    event_kind = kind_of(type(event))
    if not matches_kind(event_kind, kind):
        return None
    if as_json:
        body_raw = {"seq": raw.seq, "subject": raw.subject, "event": msgspec.Raw(raw.data)}
        return _json.encode(body_raw).decode()
    return human_line(raw.seq, event)


def human_line(seq: int, event: AnyEvent) -> str:
    """A compact one-line rendering: seq, time, kind, chat, account and a short summary."""
    when = event.observed_at.strftime("%Y-%m-%d %H:%M:%S")
    chat = f"chat={event.chat_id}" if event.chat_id is not None else "chat=-"
    return f"{seq:>8}  {when}  {kind_of(type(event)):<22} {chat:<24} {event.account:<8} {summary(event)}".rstrip()


def summary(event: Event) -> str:
    """A short description of what the event says."""
    if isinstance(event, MessagePosted | MessageEdited):
        message = event.message
        who = ""
        if message.sender is not None:
            who = message.sender.display_name or message.sender.username or str(message.sender.id)
        text = " ".join(message.text.split())
        if len(text) > 80:
            text = text[:79] + "…"
        media = f"[{message.media.type}] " if message.media is not None else ""
        return f"#{message.message_id} {who}: {media}{text}".rstrip()
    if isinstance(event, MessageDeleted):
        return f"#{event.message_id}"
    skip = {"event_id", "account", "observed_at", "source", "chat_id", "schema_version"}
    fields = msgspec.structs.asdict(event)
    parts = [
        f"{k}={v}"
        for k, v in fields.items()
        if k not in skip and v is not None and not isinstance(v, dict)
    ]
    return " ".join(parts)[:120]
