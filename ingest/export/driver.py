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

from eventlog import EventLog
from ingest.export.chat_facts import chat_facts
from ingest.export.errors import ExportError, MalformedExport, UnmappableMessage
from ingest.export.existing import known_ids
from ingest.export.history import History, original_id
from ingest.export.inflight import InFlight
from ingest.export.mapping import MessageMapper
from ingest.export.peers import chat_identity, default_chat_kind
from ingest.export.reader import ChatHeader, ExportReader
from ingest.export.summary import ImportProgress, SkippedMessage, import_warnings
from ingest.export.timezones import choose_zone, revealed_offset
from ingest.seams import EventSink
from schemas.events import (
    ChatDiscovered,
    ChatKind,
    ChatLeft,
    ChatUpdated,
    Event,
    MessagePosted,
)
from schemas.ids import is_channel_id
from schemas.subjects import validate_account

DEFAULT_BATCH: Final = 2000
# While a batch is being appended the next one is parsed; yield to the event loop this often so the
# append (publishes, acks) progresses meanwhile: the server works on one core while we parse on the other.
_YIELD_EVERY: Final = 128
_MAX_REASONS: Final = 50
_MAX_EXAMPLES: Final = 20


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
        return import_warnings(
            self.progress,
            local_dates=self._local_dates,
            tz_reason=self._tz_reason,
            migrated_from=self._migrated_from,
            chat_ids=self._chat_ids,
            odd_texts=self._odd_texts,
        )

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
            batch.extend(
                chat_facts(self._account, header, kind, main, before, basic_title, forum=forum)
            )
            await in_flight.submit(batch)
            await in_flight.drain()
        except MalformedExport:
            batch.extend(
                chat_facts(self._account, header, kind, main, before, basic_title, forum=forum)
            )
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
