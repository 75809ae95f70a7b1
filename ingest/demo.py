"""The demo source: realistic group traffic without Telegram credentials, all ``source="demo"``.

Several groups (supergroups and one basic group in five) get posts with entities, replies, edits,
deletes, media of many types, albums, joins and leaves, and reaction updates, at a steady rate
(events/s; 0 = as fast as the sink takes them). Event ids come from ``schemas.ids`` like real
traffic, so the same fact always has the same id. Message ids start at ``first_message_id``
(default: 10 × seconds since 2023-11-14, so a restarted demo never reuses an id below ~10 msg/s
per group). As in Telegram, each supergroup numbers its own messages while the basic groups share
one sequence per account (ids outside channels are unique across all of an account's chats).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import typing
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final

from ingest.facts import KnownFacts
from ingest.seams import EventSink
from schemas import ids
from schemas.commands import Command, CommandReply, RestartCrawler, TriggerCrawl
from schemas.events import (
    BackfillCompleted,
    ChatDiscovered,
    ChatInfo,
    Entity,
    Event,
    IngestConnected,
    Media,
    MediaType,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    MessageSnapshot,
    ReactionCount,
    ReactionsUpdated,
    ReplyTo,
    Sender,
    ServiceAction,
)
from schemas.status import AccountStatus

# The start of the demo groups' (empty) history: fixed, so a restart's BackfillCompleted is a duplicate.
DEMO_HISTORY_SINCE: Final = datetime(2020, 1, 1, tzinfo=UTC)

# What the demo produces; ``DemoSource.counts`` is keyed by these labels.
KINDS: Final = (
    "discovered",
    "backfilled",
    "post",
    "post_entities",
    "reply",
    "edit",
    "delete",
    "join",
    "leave",
    "reactions",
    "album",
    "media:photo",
    "media:video",
    "media:document",
    "media:audio",
    "media:voice",
    "media:video_note",
    "media:sticker",
    "media:animation",
    "media:poll",
    "media:location",
    "media:contact",
    "media:webpage",
)
_WEIGHTS: Final = {
    "post": 30,
    "post_entities": 14,
    "reply": 12,
    "media": 12,
    "album": 3,
    "edit": 9,
    "delete": 4,
    "join": 4,
    "leave": 2,
    "reactions": 10,
}
# Every kind the schema names except the catch-all.
_MEDIA_TYPES: Final[tuple[MediaType, ...]] = tuple(
    t for t in typing.get_args(MediaType) if t != "other"
)
_TOPICS: Final = (
    "Anyone going to the sauna tonight?",
    "Lecture slides are up",
    "Lost my keys near Otaniemi metro",
    "Selling a bike, 80 eur",
    "Who has the exam schedule?",
    "Hackathon team looking for a designer",
    "Free pizza at the guild room",
    "Is the library open on Sunday?",
    "Deadline moved to Friday",
    "Great talk today, thanks!",
    "Where do I register for the course?",
    "Wappu plans?",
)
_FIRST_NAMES: Final = (
    "Aino",
    "Eero",
    "Liisa",
    "Mikko",
    "Sanna",
    "Juho",
    "Emma",
    "Otto",
    "Venla",
    "Ilkka",
)
_REACTIONS: Final = ("👍", "❤", "🔥", "😂", "🎉", "👏")
_USERS: Final = 60


def _open_ledger(path: Path) -> IO[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a", encoding="utf-8")


def _default_first_message_id() -> int:
    return max(1, int(time.time() - 1_700_000_000) * 10)


@dataclass
class _IdSequence:
    """The next message id of one numbering (a supergroup's own, or an account's basic groups')."""

    next_id: int

    def take(self) -> int:
        """The next id, consumed."""
        value = self.next_id
        self.next_id += 1
        return value


@dataclass
class _Group:
    info: ChatInfo
    ids: _IdSequence
    members: list[int]
    recent: deque[MessageSnapshot] = field(default_factory=lambda: deque(maxlen=100))


class DemoSource:
    """An ``EventSource`` of synthetic traffic in ``groups`` groups at ``rate_per_s`` events/s."""

    def __init__(
        self,
        *,
        name: str = "demo",
        groups: int = 5,
        rate_per_s: float = 5.0,
        seed: int = 1,
        first_message_id: int | None = None,
        ledger_path: Path | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        chunk: int = 500,
        known_facts: KnownFacts | None = None,
    ) -> None:
        self.name = name
        self._known_facts = known_facts
        self.rate_per_s = rate_per_s
        self._rng = random.Random(seed)
        self._clock = clock
        self._chunk = chunk
        self._ledger_path = ledger_path
        self._ledger: IO[str] | None = None
        first = _default_first_message_id() if first_message_id is None else first_message_id
        self._account_ids = _IdSequence(first)  # shared by the account's basic groups
        self._groups = [self._make_group(i, first) for i in range(groups)]
        self._kinds = list(_WEIGHTS)
        self._cum_weights = list(itertools.accumulate(_WEIGHTS.values()))
        self.produced = 0
        self.counts: Counter[str] = Counter()
        self._senders: dict[int, Sender] = {}
        self._started_at: datetime | None = None

    @property
    def chat_ids(self) -> list[int]:
        """The demo groups' chat ids."""
        return [g.info.chat_id for g in self._groups]

    # --- EventSource ------------------------------------------------------------------------------

    async def run(self, sink: EventSink) -> None:
        """Announce every group, then produce traffic until cancelled."""
        if self._ledger_path is not None:
            self._ledger = await asyncio.to_thread(_open_ledger, self._ledger_path)
        self._started_at = self._clock()
        try:
            connected = IngestConnected(
                event_id=ids.occurrence_id("connected"),
                account=self.name,
                observed_at=self._clock(),
                source="demo",
            )
            await self._emit(sink, [connected], "connected")
            known = await self._known_facts(self.chat_ids) if self._known_facts else None
            for group in self._groups:
                discovered = self._discovered(group)
                if known is None or discovered.event_id not in known:
                    await self._emit(sink, [discovered], "discovered")
                # Demo groups have no history to fetch: each is crawled as soon as it is announced,
                # so its crawler status moves from initializing to active like a real group's.
                backfilled = self._backfilled(group)
                if known is None or backfilled.event_id not in known:
                    await self._emit(sink, [backfilled], "backfilled")
            if self.rate_per_s <= 0:
                await self._run_unthrottled(sink)
            else:
                await self._run_paced(sink)
        finally:
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None

    async def handle(self, command: Command) -> CommandReply:
        """Demo groups need no crawling; commands are acknowledged."""
        if isinstance(command, TriggerCrawl):
            if command.chat_id not in self.chat_ids:
                return CommandReply(
                    ok=False, message=f"demo: chat {command.chat_id} is not a demo group"
                )
            return CommandReply(
                ok=True, message=f"demo: chat {command.chat_id} needs no {command.mode}"
            )
        if isinstance(command, RestartCrawler):
            return CommandReply(ok=True, message="demo: nothing to restart")
        return CommandReply(
            ok=False, message=f"demo: {type(command).__name__} is not an ingest command"
        )

    def status(self) -> AccountStatus:
        """Always connected; the groups it announces."""
        return AccountStatus(
            account=self.name,
            state="connected",
            connected=True,
            connected_since=self._started_at,
            groups_watched=len(self._groups),
        )

    def take(self, count: int) -> list[Event]:
        """The next ``count`` traffic events without submitting them (benchmark baselines)."""
        out: list[Event] = []
        while len(out) < count:
            out.extend(self._next()[1])
        return out[:count]

    # --- pacing -----------------------------------------------------------------------------------

    async def _run_paced(self, sink: EventSink) -> None:
        tick_s = 1.0 / self.rate_per_s if self.rate_per_s < 200 else 0.005
        start = time.monotonic()
        made = 0
        while True:
            due = int((time.monotonic() - start) * self.rate_per_s) + 1
            batch: list[Event] = []
            labels: list[tuple[str, int]] = []
            while made < due:
                label, events = self._next()
                batch.extend(events)
                labels.append((label, len(events)))
                made += len(events)
            if batch:
                await self._submit_chunk(sink, batch, labels)
            await asyncio.sleep(tick_s)  # pacing of the synthetic traffic, not a wait for a result

    async def _run_unthrottled(self, sink: EventSink) -> None:
        # Two chunks in flight: the next chunk is generated while the previous one is appended.
        previous: asyncio.Task[None] | None = None
        try:
            while True:
                batch: list[Event] = []
                labels: list[tuple[str, int]] = []
                while len(batch) < self._chunk:
                    label, events = self._next()
                    batch.extend(events)
                    labels.append((label, len(events)))
                current = asyncio.ensure_future(self._submit_chunk(sink, batch, labels))
                if previous is not None:
                    await previous
                previous = current
        finally:
            if previous is not None:
                previous.cancel()

    async def _submit_chunk(
        self, sink: EventSink, batch: list[Event], labels: list[tuple[str, int]]
    ) -> None:
        # Recorded once the sink says they are durable (acked by the log or fsync'd to its spool),
        # as a real source saves its position: a ledger id is a promise the log will hold it.
        await sink.submit_many(batch)
        self._record(batch, labels)

    async def _emit(self, sink: EventSink, events: list[Event], label: str) -> None:
        await self._submit_chunk(sink, events, [(label, len(events))])

    def _record(self, events: list[Event], labels: list[tuple[str, int]]) -> None:
        self.produced += len(events)
        for label, n in labels:
            self.counts[label] += n
        if self._ledger is not None:
            # Flushed to the OS at once: a kill -9 of this process keeps every line written.
            self._ledger.write("".join(f"{e.event_id}\n" for e in events))
            self._ledger.flush()

    # --- traffic ----------------------------------------------------------------------------------

    def _make_group(self, index: int, first_message_id: int) -> _Group:
        basic = index % 5 == 4
        if basic:
            info = ChatInfo(
                chat_id=-(900_000_000 + index),
                kind="group",
                title=f"Demo study group {index}",
                member_count=40,
            )
        else:
            info = ChatInfo(
                chat_id=ids.CHANNEL_ID_OFFSET - (1_900_000_000 + index),
                kind="supergroup",
                title=f"Demo group {index}",
                username=f"aaltohub_demo_{index}",
                member_count=500,
            )
        members = self._rng.sample(range(1, _USERS + 1), 12)
        sequence = self._account_ids if basic else _IdSequence(first_message_id)
        return _Group(info=info, ids=sequence, members=members)

    def _next(self) -> tuple[str, list[Event]]:
        group = self._rng.choice(self._groups)
        kind = self._rng.choices(self._kinds, cum_weights=self._cum_weights)[0]
        if kind in ("edit", "delete", "reactions", "reply") and not group.recent:
            kind = "post"
        if kind == "post":
            return kind, [self._post(group, text=self._rng.choice(_TOPICS))]
        if kind == "post_entities":
            text, entities = self._text_with_entities(group)
            return kind, [self._post(group, text=text, entities=entities)]
        if kind == "reply":
            target = self._rng.choice(group.recent)
            reply = ReplyTo(message_id=target.message_id, top_id=target.message_id)
            return kind, [self._post(group, text="Same question here", reply_to=reply)]
        if kind == "media":
            media_type = self._rng.choice(_MEDIA_TYPES)
            return f"media:{media_type}", [
                self._post(group, text="", media=self._media(media_type))
            ]
        if kind == "album":
            grouped_id = self._rng.getrandbits(62)
            size = self._rng.randint(2, 4)
            return kind, [
                self._post(
                    group,
                    text="Photos from today" if i == 0 else "",
                    media=self._media("photo"),
                    grouped_id=grouped_id,
                )
                for i in range(size)
            ]
        if kind == "edit":
            return kind, [self._edit(group)]
        if kind == "delete":
            return kind, [self._delete(group)]
        if kind == "reactions":
            return kind, [self._reactions(group)]
        return kind, [self._membership(group, joined=kind == "join")]

    def _sender(self, user_id: int) -> Sender:
        sender = self._senders.get(user_id)
        if sender is None:
            name = _FIRST_NAMES[user_id % len(_FIRST_NAMES)]
            sender = Sender(
                id=user_id,
                kind="user",
                display_name=f"{name} {user_id}",
                username=f"{name.lower()}{user_id}",
            )
            self._senders[user_id] = sender
        return sender

    def _post(
        self,
        group: _Group,
        *,
        text: str,
        entities: tuple[Entity, ...] = (),
        reply_to: ReplyTo | None = None,
        media: Media | None = None,
        grouped_id: int | None = None,
    ) -> MessagePosted:
        message_id = group.ids.take()
        now = self._clock()
        snapshot = MessageSnapshot(
            message_id=message_id,
            date=now.replace(microsecond=0),
            sender=self._sender(self._rng.choice(group.members)),
            text=text,
            entities=entities,
            reply_to=reply_to,
            media=media,
            grouped_id=grouped_id,
        )
        group.recent.append(snapshot)
        return MessagePosted(
            event_id=ids.posted_id(group.info.chat_id, message_id, account=self.name),
            account=self.name,
            observed_at=now,
            source="demo",
            chat_id=group.info.chat_id,
            message=snapshot,
        )

    def _text_with_entities(self, group: _Group) -> tuple[str, tuple[Entity, ...]]:
        # ASCII only, so UTF-16 offsets equal str offsets.
        member = self._sender(self._rng.choice(group.members))
        parts: list[tuple[str, str | None]] = [
            ("Reminder: ", None),
            ("guild meeting", "bold"),
            (" at 18:00, see ", None),
            ("https://aalto.fi/events", "url"),
            (" ", None),
            ("#otaniemi", "hashtag"),
            (" cc ", None),
            (f"@{member.username}", "mention"),
            (" code ", None),
            ("AH-2026", "code"),
        ]
        text = ""
        entities: list[Entity] = []
        for chunk, entity_type in parts:
            if entity_type is not None:
                entities.append(Entity(type=entity_type, offset=len(text), length=len(chunk)))
            text += chunk
        return text, tuple(entities)

    def _media(self, media_type: MediaType) -> Media:
        unique = f"demo{self._rng.getrandbits(48):012x}"
        rng = self._rng
        if media_type == "photo":
            return Media(
                type="photo",
                file_unique_id=unique,
                size=rng.randint(40_000, 900_000),
                mime_type="image/jpeg",
                width=1280,
                height=960,
            )
        if media_type in ("video", "animation", "video_note"):
            return Media(
                type=media_type,
                file_unique_id=unique,
                size=rng.randint(200_000, 9_000_000),
                mime_type="video/mp4",
                duration_s=float(rng.randint(2, 90)),
                width=720,
                height=720,
            )
        if media_type in ("audio", "voice"):
            return Media(
                type=media_type,
                file_unique_id=unique,
                size=rng.randint(10_000, 3_000_000),
                mime_type="audio/ogg" if media_type == "voice" else "audio/mpeg",
                duration_s=float(rng.randint(1, 300)),
                title="Demo track" if media_type == "audio" else None,
            )
        if media_type == "document":
            return Media(
                type="document",
                file_unique_id=unique,
                size=rng.randint(10_000, 5_000_000),
                mime_type="application/pdf",
                file_name="lecture-notes.pdf",
            )
        if media_type == "sticker":
            return Media(
                type="sticker",
                file_unique_id=unique,
                size=30_000,
                mime_type="image/webp",
                emoji="😀",
            )
        if media_type == "poll":
            return Media(
                type="poll", poll_question="Sauna at 19 or 20?", poll_answers=("19", "20", "both")
            )
        if media_type == "location":
            return Media(type="location", latitude=60.1867, longitude=24.8277)
        if media_type == "contact":
            return Media(type="contact", title="Guild office")
        return Media(type="webpage", url="https://aalto.fi/en/news", title="Aalto news")

    def _edit(self, group: _Group) -> MessageEdited:
        original = self._rng.choice(group.recent)
        edited = MessageSnapshot(
            message_id=original.message_id,
            date=original.date,
            edit_date=self._clock().replace(microsecond=0),
            sender=original.sender,
            text=(original.text or "") + " (edited)",
            entities=original.entities,
            reply_to=original.reply_to,
            media=original.media,
            grouped_id=original.grouped_id,
        )
        return MessageEdited(
            event_id=ids.edited_id(group.info.chat_id, edited, account=self.name),
            account=self.name,
            observed_at=self._clock(),
            source="demo",
            chat_id=group.info.chat_id,
            message=edited,
        )

    def _delete(self, group: _Group) -> MessageDeleted:
        victim = group.recent[self._rng.randrange(len(group.recent))]
        group.recent.remove(victim)
        chat_id = group.info.chat_id
        # Telegram sends basic-group deletes without a chat id; so does the demo.
        event_chat = chat_id if ids.is_channel_id(chat_id) else None
        return MessageDeleted(
            event_id=ids.deleted_id(
                account=self.name, chat_id=event_chat, message_id=victim.message_id
            ),
            account=self.name,
            observed_at=self._clock(),
            source="demo",
            chat_id=event_chat,
            message_id=victim.message_id,
        )

    def _reactions(self, group: _Group) -> ReactionsUpdated:
        target = self._rng.choice(group.recent)
        chosen = self._rng.sample(_REACTIONS, self._rng.randint(1, 3))
        reactions = tuple(ReactionCount(emoji=e, count=self._rng.randint(1, 40)) for e in chosen)
        return ReactionsUpdated(
            event_id=ids.reactions_id(
                group.info.chat_id, target.message_id, reactions, account=self.name
            ),
            account=self.name,
            observed_at=self._clock(),
            source="demo",
            chat_id=group.info.chat_id,
            message_id=target.message_id,
            reactions=reactions,
        )

    def _membership(self, group: _Group, *, joined: bool) -> MessagePosted:
        if joined or len(group.members) < 3:
            user_id = self._rng.randint(_USERS + 1, _USERS + 10_000)
            group.members.append(user_id)
            action = ServiceAction(type="chat_add_user", user_ids=(user_id,))
        else:
            user_id = group.members.pop(self._rng.randrange(len(group.members)))
            action = ServiceAction(type="chat_delete_user", user_ids=(user_id,))
        message_id = group.ids.take()
        snapshot = MessageSnapshot(
            message_id=message_id,
            date=self._clock().replace(microsecond=0),
            sender=self._sender(user_id),
            action=action,
        )
        return MessagePosted(
            event_id=ids.posted_id(group.info.chat_id, message_id, account=self.name),
            account=self.name,
            observed_at=self._clock(),
            source="demo",
            chat_id=group.info.chat_id,
            message=snapshot,
        )

    def _backfilled(self, group: _Group) -> BackfillCompleted:
        chat_id = group.info.chat_id
        return BackfillCompleted(
            event_id=ids.backfill_completed_id(self.name, chat_id, DEMO_HISTORY_SINCE),
            account=self.name,
            observed_at=self._clock(),
            source="demo",
            chat_id=chat_id,
            since=DEMO_HISTORY_SINCE,
            fetched=0,
        )

    def _discovered(self, group: _Group) -> ChatDiscovered:
        return ChatDiscovered(
            event_id=ids.discovered_id(self.name, group.info.chat_id),
            account=self.name,
            observed_at=self._clock(),
            source="demo",
            chat_id=group.info.chat_id,
            chat=group.info,
        )
