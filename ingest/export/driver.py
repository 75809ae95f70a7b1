"""The import driver: an export file → ``ChatDiscovered`` + one ``MessagePosted`` per message, via a sink.

Per chat: learn what the log already holds (``existing.known_ids``), append the chat's
``ChatDiscovered`` unless present, then map and append its messages in batches through the
``EventSink``. Messages already in the log count as "already present"; a message that cannot be
mapped is reported (``on_skip``), counted by reason and skipped. A malformed file stops the import
with ``MalformedExport`` after the batch in hand is appended: the log holds only complete events, and
a re-run after fixing the file appends only what is missing.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Final

import msgspec

from eventlog import EventLog
from ingest.export.errors import ExportError, MalformedExport, UnmappableMessage
from ingest.export.existing import known_ids
from ingest.export.history import History, original_id
from ingest.export.inflight import InFlight
from ingest.export.mapping import MessageMapper
from ingest.export.peers import chat_identity, default_chat_kind
from ingest.export.reader import ChatHeader, ExportReader
from ingest.export.timezones import choose_zone, revealed_offset
from ingest.seams import EventSink
from schemas.events import (
    ChatDiscovered,
    ChatInfo,
    ChatKind,
    ChatLeft,
    ChatUpdated,
    Event,
    MessagePosted,
)
from schemas.ids import chat_updated_id, discovered_id, is_channel_id, left_id
from schemas.subjects import validate_account

DEFAULT_BATCH: Final = 2000
# While a batch is being appended the next one is parsed; yield to the event loop this often so the
# append (publishes, acks) progresses meanwhile: the server works on one core while we parse on the other.
_YIELD_EVERY: Final = 128
_MAX_REASONS: Final = 50
_MAX_EXAMPLES: Final = 20


class SkippedMessage(msgspec.Struct, frozen=True):
    """A message that was not imported, and why."""

    chat_id: int | None
    message_id: object
    reason: str


class ImportProgress(msgspec.Struct, kw_only=True):
    """Counters of a running import (also its final summary)."""

    chats: int = 0
    messages: int = 0
    imported: int = 0
    spooled: int = 0  # accepted but still in the import spool when the import ended (not imported)
    already_present: int = 0
    # Messages an earlier import stored with other local dates: stored again with this import's
    # dates, which the projections show (a re-import with the right --tz corrects them) ...
    redated: int = 0
    # ... or kept, where the earlier dates rank higher (read in a --tz zone, this import guesses).
    dates_kept: int = 0
    pre_migration: int = 0  # messages from before a basic group became the supergroup
    skipped: int = 0
    chats_skipped: int = 0
    failed: int = 0  # messages that could not be stored (too large for the log): exit non-zero
    bytes_read: int = 0
    total_bytes: int = 0
    elapsed_s: float = 0.0
    skip_reasons: dict[str, int] = msgspec.field(default_factory=dict)
    skipped_examples: list[SkippedMessage] = msgspec.field(default_factory=list)
    # Said once per import, with counts: what landed differently from what the file says.
    warnings: list[str] = msgspec.field(default_factory=list)

    @property
    def messages_per_s(self) -> float:
        """Messages read per second so far."""
        return self.messages / self.elapsed_s if self.elapsed_s > 0 else 0.0


def _creates_topic(raw: object) -> bool:
    """True for a raw ``topic_created`` service message."""
    return isinstance(raw, dict) and raw.get("action") == "topic_created"


class _TooLarge(UnmappableMessage):
    """A mapped message whose event the log cannot store."""


class ExportImporter:
    """Imports Telegram Desktop exports into the log through ``sink``; reads ``log`` to stay idempotent."""

    def __init__(
        self,
        *,
        log: EventLog,
        sink: EventSink,
        account: str,
        tz: tzinfo | None = None,
        chat_id: int | None = None,
        migrated_from: int | None = None,
        batch_size: int = DEFAULT_BATCH,
        in_flight: int = 1,
        on_progress: Callable[[ImportProgress], None] | None = None,
        on_skip: Callable[[SkippedMessage], None] | None = None,
    ) -> None:
        self._log = log
        self._sink = sink
        self._account = validate_account(account)
        self._given_tz = tz  # None: the offset the file reveals, else UTC
        self._tz: tzinfo = UTC
        self._tz_reason = ""
        self._local_dates = 0
        self._chat_id = chat_id
        self._migrated_from = migrated_from
        self._batch_size = batch_size
        self._in_flight = in_flight
        self._on_progress = on_progress
        self._on_skip = on_skip
        self._reasons: Counter[str] = Counter()
        self.progress = ImportProgress()
        self._max_event_bytes = 0  # known once connected (run)
        self._chat_ids: Counter[int] = Counter()  # chats seen in this file, to warn about repeats
        self._odd_texts = 0

    async def run(self, path: Path) -> ImportProgress:
        """Import the export at ``path``; returns the summary. Raises ``MalformedExport``/``ExportError``."""
        reader = ExportReader(path)
        started = time.monotonic()
        progress = self.progress
        progress.total_bytes = reader.total_bytes
        self._max_event_bytes = self._log.max_event_bytes
        evidence = await asyncio.to_thread(revealed_offset, path)
        self._tz, self._tz_reason = choose_zone(self._given_tz, evidence)
        observed_at = datetime.now(UTC)
        try:
            for header, messages in reader.chats():
                identity = self._identity(header)
                if identity is None:
                    self._skip_chat(header, messages)
                    continue
                chat_id, kind = identity
                if (
                    self._chat_id is not None
                    and header.section != "single"
                    and chat_id != self._chat_id
                ):
                    for _ in messages:  # not the selected chat
                        pass
                    continue
                progress.chats += 1
                self._chat_ids[chat_id] += 1
                mapper = MessageMapper(
                    chat_id=chat_id,
                    chat_kind=kind,
                    account=self._account,
                    tz=self._tz,
                    tz_given=self._given_tz is not None,
                    observed_at=observed_at,
                )
                known = await known_ids(self._log, chat_id, account=self._account)
                main = History(mapper, known)
                before = await self._pre_migration(header, chat_id, observed_at)
                await self._import_chat(header, kind, main, before, messages, reader, started)
        finally:
            progress.bytes_read = reader.bytes_read or progress.bytes_read
            progress.elapsed_s = time.monotonic() - started
            progress.skip_reasons = dict(self._reasons)
            progress.warnings = self._warnings()
        return progress

    def _warnings(self) -> list[str]:
        out: list[str] = []
        if self._local_dates:
            out.append(
                f"{self._local_dates} messages have no date_unixtime; their local dates were read "
                f"as {self._tz_reason}"
            )
        progress = self.progress
        if progress.redated:
            out.append(
                f"{progress.redated} messages an earlier import stored with other local dates were "
                "stored again with these dates, which replace the earlier ones"
            )
        if progress.dates_kept:
            out.append(
                f"{progress.dates_kept} messages keep the dates an earlier import read in a zone "
                "given with --tz; pass --tz to read them again"
            )
        pre = self.progress.pre_migration
        if pre and self._migrated_from is None:
            out.append(
                f"{pre} messages from before the group became a supergroup were stored under the "
                "supergroup with the export's shifted ids (-1,000,000,000 + id); pass "
                "--migrated-from <basic group id> to file them under the basic group, where they "
                "dedupe against live and backfill"
            )
        elif pre:
            out.append(f"{pre} messages from before the migration: under {self._migrated_from}")
        repeated = {c: n for c, n in self._chat_ids.items() if n > 1}
        for chat_id, n in sorted(repeated.items()):
            out.append(
                f"chat {chat_id} appears {n} times in the export; its messages were imported "
                "as one chat (a message id seen twice is skipped as a duplicate)"
            )
        if self._odd_texts:
            out.append(
                f"{self._odd_texts} messages have a `text` that is neither a string nor a list "
                "(a number or an object); their text was taken from it as written"
            )
        return out

    async def _pre_migration(
        self, header: ChatHeader, chat_id: int, observed_at: datetime
    ) -> History | None:
        """The basic group history that ``--migrated-from`` names for the selected supergroup."""
        basic = self._migrated_from
        if basic is None or not is_channel_id(chat_id):
            return None
        if header.section != "single" and self._chat_id is None:
            raise ExportError("--migrated-from needs --chat-id with a full-account export")
        mapper = MessageMapper(
            chat_id=basic,
            chat_kind="group",
            account=self._account,
            tz=self._tz,
            tz_given=self._given_tz is not None,
            observed_at=observed_at,
            unshift_replies=True,
        )
        return History(mapper, await known_ids(self._log, basic, account=self._account))

    def _identity(self, header: ChatHeader) -> tuple[int, ChatKind] | None:
        if self._chat_id is not None and header.section == "single":
            found = chat_identity(header.type, header.id)
            kind = found[1] if found is not None else default_chat_kind(self._chat_id)
            return self._chat_id, kind
        return chat_identity(header.type, header.id)

    def _skip_chat(self, header: ChatHeader, messages: Iterator[object]) -> None:
        self.progress.chats_skipped += 1
        reason = (
            f"chat at {header.json_path} has no usable id/type "
            f"(id={header.id!r}, type={header.type!r}); pass --chat-id with its marked id"
        )
        for raw in messages:
            self.progress.messages += 1
            message_id = raw.get("id") if isinstance(raw, dict) else None
            self._skipped(None, message_id, reason)

    async def _import_chat(
        self,
        header: ChatHeader,
        kind: ChatKind,
        main: History,
        before: History | None,
        messages: Iterator[object],
        reader: ExportReader,
        started: float,
    ) -> None:
        chat_id = main.mapper.chat_id
        progress = self.progress
        batch: list[Event] = []
        in_flight = InFlight(self._sink, self._appended, limit=self._in_flight)
        # The export's migrate_from_group names the basic group's title at the migration.
        basic_title: list[tuple[datetime, str]] = []
        forum = False
        try:
            for raw in messages:
                progress.messages += 1
                if progress.messages % _YIELD_EVERY == 0 and in_flight.busy:
                    await asyncio.sleep(0)  # let the batch in flight publish and collect acks
                # Only a forum has topics; the export has no flag for it. Read from every message,
                # those the log holds too: an earlier import may not have recorded the flag.
                forum = forum or _creates_topic(raw)
                try:
                    posted = self._posted(main, before, raw)
                except _TooLarge as e:
                    progress.failed += 1
                    self._skipped(chat_id, e.message_id, e.reason, failed=True)
                    continue
                except UnmappableMessage as e:
                    self._skipped(chat_id, e.message_id, e.reason)
                    continue
                if posted is None:
                    continue
                action = posted.message.action
                if action is not None and action.type == "channel_migrate_from" and action.title:
                    basic_title.append((posted.message.date, action.title))
                batch.append(posted)
                if len(batch) >= self._batch_size:
                    await in_flight.submit(batch)
                    self._report(reader, started)
                    batch = []
            batch.extend(self._chat_facts(header, kind, main, before, basic_title, forum=forum))
            await in_flight.submit(batch)
            await in_flight.drain()
        except MalformedExport:
            batch.extend(self._chat_facts(header, kind, main, before, basic_title, forum=forum))
            await in_flight.submit(batch)  # what was read is complete and valid
            await in_flight.drain()
            raise
        finally:
            await in_flight.abort()  # only after another error (cancellation, the log failing)
            mappers = [main.mapper] + ([] if before is None else [before.mapper])
            self._odd_texts += sum(m.odd_texts for m in mappers)
            self._local_dates += sum(m.local_dates for m in mappers)
            self._report(reader, started)

    def _posted(self, main: History, before: History | None, raw: object) -> MessagePosted | None:
        """The event of one raw message, None if the log holds it; raises ``UnmappableMessage``."""
        message_id = main.mapper.message_id(raw)
        history = main
        if message_id < 0:  # from before the migration (MessageMapper.message_id admits no other)
            self.progress.pre_migration += 1
            if before is not None:
                history, message_id = before, original_id(message_id)
        if history.known.has_message(message_id) or not self._new_reading(history, raw, message_id):
            self.progress.already_present += 1
            history.saw(history.mapper.date_of(raw))  # type: ignore[arg-type]
            return None
        if not history.seen.add(message_id):
            raise UnmappableMessage("duplicate message id in the export", message_id=message_id)
        posted = history.mapper.posted(raw, message_id)  # type: ignore[arg-type]
        size = len(self._log.codec.encode(posted))
        if size > self._max_event_bytes:
            # Never handed to the sink: it would be refused, dead-lettered and reported as a new
            # error event on every re-import. Counted as failed instead (the import exits 1).
            raise _TooLarge(
                f"too large for the log ({size:,} bytes encoded, at most {self._max_event_bytes:,})",
                message_id=message_id,
            )
        history.saw(posted.message.date)
        history.appended += 1
        return posted

    def _new_reading(self, history: History, raw: object, message_id: int) -> bool:
        """Whether a message the log holds only with local dates gets this import's snapshot: when
        its dates differ and rank at least as high (a re-import in the right zone), not when they
        agree or an earlier reading ranks higher (docs/decisions/041-corrected-export-dates.md)."""
        known = history.known.local.get(message_id)
        if known is None:
            return True  # not in the log at all
        mine = history.mapper.reading(raw)  # type: ignore[arg-type]
        if mine is None:
            return True  # let the mapper say what is wrong with it
        rank, date = mine
        if int(date.timestamp()) == known[1]:
            return False
        if rank < known[0]:
            self.progress.dates_kept += 1
            return False
        self.progress.redated += 1
        return True

    def _chat_facts(
        self,
        header: ChatHeader,
        kind: ChatKind,
        main: History,
        before: History | None,
        basic_title: list[tuple[datetime, str]],
        *,
        forum: bool,
    ) -> list[Event]:
        """The chat's discovery (as of its newest message), for a left chat its leave, and for a
        migrated supergroup its basic group's link to it, unless the log holds them."""
        chat_id = main.mapper.chat_id
        observed_at = datetime.now(UTC)
        info = ChatInfo(
            chat_id=chat_id, kind=kind, title=header.name or None, forum=forum, as_of=main.newest
        )
        facts: list[Event] = [
            ChatDiscovered(
                event_id=discovered_id(self._account, chat_id),
                chat_id=chat_id,
                chat=info,
                account=self._account,
                observed_at=observed_at,
                source="import",
            )
        ]
        if header.section == "left_chats":
            # The account had left this chat when it exported: store it left, not active.
            facts.append(
                ChatLeft(
                    event_id=left_id(self._account, chat_id),
                    chat_id=chat_id,
                    reason="listed under left_chats in the export",
                    account=self._account,
                    observed_at=observed_at,
                    source="import",
                )
            )
        known = main.known.chat_events
        if forum and not main.known.forum and facts[0].event_id in known:
            # The chat was imported before without its forum flag: say it now, as of the export.
            facts.append(
                ChatUpdated(
                    event_id=chat_updated_id(info, observed_at=observed_at),
                    chat_id=chat_id,
                    chat=info,
                    account=self._account,
                    observed_at=observed_at,
                    source="import",
                )
            )
        if before is not None and (before.newest is not None or basic_title):
            # The basic group as it was when it became this supergroup.
            at, title = basic_title[-1] if basic_title else (before.newest, None)
            basic = ChatInfo(
                chat_id=before.mapper.chat_id,
                kind="group",
                title=title,
                as_of=at,
                migrated_to=chat_id,
            )
            facts.append(
                ChatUpdated(
                    event_id=chat_updated_id(basic, observed_at=observed_at),
                    chat_id=basic.chat_id,
                    chat=basic,
                    account=self._account,
                    observed_at=observed_at,
                    source="import",
                )
            )
            known = known | before.known.chat_events
        return [f for f in facts if f.event_id not in known]

    def _appended(self, batch: list[Event]) -> None:
        self.progress.imported += sum(
            1 for e in batch if not isinstance(e, ChatDiscovered | ChatLeft | ChatUpdated)
        )

    def _report(self, reader: ExportReader, started: float) -> None:
        self.progress.bytes_read = reader.bytes_read
        self.progress.elapsed_s = time.monotonic() - started
        if self._on_progress is not None:
            self._on_progress(self.progress)

    def _skipped(
        self, chat_id: int | None, message_id: object, reason: str, *, failed: bool = False
    ) -> None:
        progress = self.progress
        if not failed:
            progress.skipped += 1
        key = (
            reason
            if reason in self._reasons or len(self._reasons) < _MAX_REASONS
            else "other reasons"
        )
        self._reasons[key] += 1
        skipped = SkippedMessage(chat_id, message_id, reason)
        if len(progress.skipped_examples) < _MAX_EXAMPLES:
            progress.skipped_examples.append(skipped)
        if self._on_skip is not None:
            self._on_skip(skipped)
