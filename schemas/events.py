"""Every event kind of the log, as frozen msgspec Structs in one tagged union.

An event is an immutable fact observed by one Telegram account (or an import, or the demo source).
The union is tagged by ``kind``; every event carries a ``schema_version`` so that older records
are upcast on read (see ``schemas.upcast``) and never rewritten.

Chat ids are *marked* peer ids as Telethon uses them: users are positive, basic groups are
``-chat_id`` and channels/supergroups are ``-100…`` (``-1000000000000 - channel_id``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final, Literal

import msgspec

Source = Literal["live", "backfill", "gapfill", "catchup", "import", "demo"]
SenderKind = Literal["user", "channel", "chat"]
MediaType = Literal[
    "photo",
    "video",
    "document",
    "audio",
    "voice",
    "video_note",
    "sticker",
    "animation",
    "poll",
    "location",
    "contact",
    "webpage",
    "other",
]
ChatKind = Literal["channel", "supergroup", "group", "private", "bot", "saved"]

# Scalar values allowed in the free-form parts of a snapshot (service action details).
Scalar = str | int | float | bool | None


class Sender(msgspec.Struct, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """Who sent a message: a user, a channel (anonymous admin / channel post) or a basic chat."""

    id: int
    kind: SenderKind
    display_name: str | None = None
    username: str | None = None


class Entity(msgspec.Struct, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """A formatting entity; offset and length count UTF-16 code units, as Telegram does."""

    type: str
    offset: int
    length: int
    url: str | None = None
    user_id: int | None = None
    language: str | None = None
    custom_emoji_id: int | None = None


class ReplyTo(msgspec.Struct, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """What a message replies to; ``top_id`` is the thread root, ``forum_topic`` marks topic threads."""

    message_id: int | None = None
    top_id: int | None = None
    forum_topic: bool = False
    peer_id: int | None = None


class ForwardOrigin(msgspec.Struct, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """Where a forwarded message came from (the id is missing when the origin hides it)."""

    peer_id: int | None = None
    name: str | None = None
    date: datetime | None = None
    message_id: int | None = None
    post_author: str | None = None


class Media(msgspec.Struct, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """A media descriptor (no bytes): enough to describe, deduplicate and optionally download it."""

    type: MediaType
    file_unique_id: str | None = None
    size: int | None = None
    mime_type: str | None = None
    file_name: str | None = None
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    emoji: str | None = None
    title: str | None = None
    url: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    poll_question: str | None = None
    poll_answers: tuple[str, ...] = ()
    spoiler: bool = False
    performer: str | None = None  # audio: the artist (``title`` is the track)
    site_name: str | None = None  # web page preview: the site (``title``, ``url`` are the page's)
    description: str | None = None  # web page preview: its summary text


class ReactionCount(msgspec.Struct, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """One reaction and how many chose it (``emoji`` or ``custom_emoji_id``; ``paid`` for stars)."""

    count: int
    emoji: str | None = None
    custom_emoji_id: int | None = None
    paid: bool = False


class Button(msgspec.Struct, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """A reply-markup button: its label and, for a link (url, login, web app), where it goes."""

    text: str
    url: str | None = None


class ServiceAction(msgspec.Struct, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """The action of a service message (join, leave, title change, pin, …) and its fields."""

    type: str
    user_ids: tuple[int, ...] = ()
    title: str | None = None
    message_id: int | None = None
    details: dict[str, Scalar] = msgspec.field(default_factory=dict)


class LocalDate(msgspec.Struct, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """How an export's local time without offset was read: in ``zone`` (None: not recorded, an
    import from before dates said so), ``given`` by the user (``--tz``) or guessed by the importer
    (the offset the file reveals, else UTC)."""

    zone: str | None = None
    given: bool = False


class MessageSnapshot(msgspec.Struct, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """The full state of one message as Telegram showed it at observation time."""

    message_id: int
    date: datetime
    # None: ``date`` (and ``edit_date``) are Telegram's own UTC times (live, backfill, an export with
    # ``date_unixtime``); else an export's local times read in a zone (see ``date_rank``).
    local_date: LocalDate | None = None
    edit_date: datetime | None = None
    sender: Sender | None = None
    text: str = ""
    entities: tuple[Entity, ...] = ()
    reply_to: ReplyTo | None = None
    forward: ForwardOrigin | None = None
    via_bot_id: int | None = None
    via_bot_name: str | None = None
    post_author: str | None = None
    views: int | None = None
    forwards: int | None = None
    replies: int | None = None
    # A channel post's linked discussion group (marked id), where its comments live.
    discussion_chat_id: int | None = None
    grouped_id: int | None = None
    media: Media | None = None
    reactions: tuple[ReactionCount, ...] = ()
    action: ServiceAction | None = None
    buttons: tuple[tuple[Button, ...], ...] = ()  # reply markup, row by row
    pinned: bool = False
    silent: bool = False
    edit_hidden: bool = False


_NO_EDIT: Final = datetime.min.replace(tzinfo=UTC)


def snapshot_time(message: MessageSnapshot) -> tuple[datetime, datetime]:
    """How new a snapshot is by Telegram's own time: (edit date, date), an unedited one first.

    The log's seq breaks ties (``projector.rules.snapshot_order``); ingest, which compares its own
    observations, lets the later observation win a tie."""
    return (message.edit_date or _NO_EDIT, message.date)


EXACT_DATE: Final = 2
GIVEN_ZONE: Final = 1
GUESSED_ZONE: Final = 0


def date_rank(message: MessageSnapshot) -> int:
    """How far a snapshot's dates can be trusted: ``EXACT_DATE`` (Telegram's UTC time), else a local
    time read in a ``GIVEN_ZONE`` (``--tz``) or a ``GUESSED_ZONE``. Per message the highest rank's
    snapshots count, and among local ones only the latest by seq
    (docs/decisions/041-corrected-export-dates.md)."""
    local = message.local_date
    if local is None:
        return EXACT_DATE
    return GIVEN_ZONE if local.given else GUESSED_ZONE


class ChatInfo(msgspec.Struct, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """What we know about a chat (group, supergroup, channel or private chat)."""

    chat_id: int
    kind: ChatKind
    title: str | None = None
    username: str | None = None
    member_count: int | None = None
    forum: bool = False
    # When Telegram showed this info, where that is earlier than the event's observation: an
    # export shows a chat as of its newest message, whenever it is imported. None: observed_at.
    as_of: datetime | None = None
    # The supergroup a basic group became (marked id): its history continues there.
    migrated_to: int | None = None
    # The chat's current photo (Telegram's photo id); None: not said (an export, no photo).
    photo_id: int | None = None


class Event(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag_field="kind"):
    """Fields every event carries; ``event_id`` is deterministic (see ``schemas.ids``)."""

    event_id: str
    account: str
    observed_at: datetime
    source: Source
    chat_id: int | None = None
    schema_version: int = 1


class MessagePosted(Event, frozen=True, kw_only=True, tag="message.posted"):
    """A message (or service message) exists; ``message`` is its snapshot when observed."""

    # v2: ids of non-channel messages include the account; v3: a snapshot says whether its dates
    # are exact (``local_date``), and the id of a local reading names it (schemas.ids.posted_id)
    schema_version: int = 3

    message: MessageSnapshot


class MessageEdited(Event, frozen=True, kw_only=True, tag="message.edited"):
    """A message was edited; ``message`` is the snapshot after the edit."""

    # v2: ids of non-channel messages include the account; the id digests the entities too (a
    # formatting-only edit within the same second is a new fact)
    schema_version: int = 2

    message: MessageSnapshot


def chat_info_time(event: ChatDiscovered | ChatUpdated) -> datetime:
    """How new a chat event's metadata is by Telegram's own time (its ``as_of``, else when it was
    observed); the log's seq breaks ties (``projector.rules``)."""
    return event.chat.as_of or event.observed_at


class MessageDeleted(Event, frozen=True, kw_only=True, tag="message.deleted"):
    """A message was deleted. ``chat_id`` is None when Telegram did not say (basic groups, private)."""

    message_id: int


class ReactionsUpdated(Event, frozen=True, kw_only=True, tag="message.reactions"):
    """The reaction summary of a message changed."""

    schema_version: int = 2  # v2: ids of non-channel messages include the account

    message_id: int
    reactions: tuple[ReactionCount, ...] = ()


class CountersUpdated(Event, frozen=True, kw_only=True, tag="message.counters"):
    """A message's engagement counters changed (views, forwards, replies); None means not reported.

    Its own fact, neither a new version nor an edit: views grow all the time without the message
    changing. Live updates are coalesced to at most one per message a minute; gap-fill and catch-up
    record the counters they re-read."""

    message_id: int
    views: int | None = None
    forwards: int | None = None
    replies: int | None = None


class MediaStored(Event, frozen=True, kw_only=True, tag="message.media_stored"):
    """A message's media was downloaded and stored (content-addressed by sha256)."""

    schema_version: int = 2  # v2: ids of non-channel messages include the account

    message_id: int
    sha256: str
    size: int
    mime_type: str | None = None
    path: str


class ChatDiscovered(Event, frozen=True, kw_only=True, tag="chat.discovered"):
    """The account started watching a chat."""

    chat: ChatInfo


class ChatUpdated(Event, frozen=True, kw_only=True, tag="chat.updated"):
    """A chat's metadata changed (title, username, member count, forum flag)."""

    schema_version: int = 2  # v2: the id names the update's time (schemas.ids.chat_updated_id)

    chat: ChatInfo


class ChatLeft(Event, frozen=True, kw_only=True, tag="chat.left"):
    """The chat is no longer among the account's dialogs."""

    reason: str | None = None


class BackfillStarted(Event, frozen=True, kw_only=True, tag="backfill.started"):
    """A history backfill of a chat began (or resumed) for messages since ``since``."""

    since: datetime
    resume_after_message_id: int | None = None
    estimated_total: int | None = None


class BackfillProgressed(Event, frozen=True, kw_only=True, tag="backfill.progress"):
    """A backfill fetched ``fetched`` messages so far, up to ``last_message_id``."""

    since: datetime
    fetched: int
    last_message_id: int
    estimated_total: int | None = None


class BackfillCompleted(Event, frozen=True, kw_only=True, tag="backfill.completed"):
    """A backfill of a chat finished."""

    since: datetime
    fetched: int
    last_message_id: int | None = None


class GapFillCompleted(Event, frozen=True, kw_only=True, tag="gapfill.completed"):
    """A gap-fill pass over ``[window_start, window_end]`` of a chat and what it found."""

    window_start: datetime
    window_end: datetime
    fetched: int
    new: int
    edited: int
    deleted: int


class CatchUpCompleted(Event, frozen=True, kw_only=True, tag="catchup.completed"):
    """What a catch-up after downtime recovered for one chat: message ids ``from_message_id`` to
    ``to_message_id`` were covered; ``new`` messages the log did not hold, ``edited`` and ``deleted``
    ones. ``too_long``: Telegram had no difference that far back, so history was read instead."""

    from_message_id: int | None = None
    to_message_id: int | None = None
    new: int = 0
    edited: int = 0
    deleted: int = 0
    too_long: bool = False


class IngestStarted(Event, frozen=True, kw_only=True, tag="ingest.started"):
    """An ingest process started for an account."""

    version: str | None = None
    demo: bool = False


class IngestConnected(Event, frozen=True, kw_only=True, tag="ingest.connected"):
    """The account's client connected to Telegram."""


class IngestDisconnected(Event, frozen=True, kw_only=True, tag="ingest.disconnected"):
    """The account's client lost its connection to Telegram."""

    reason: str | None = None


class IngestReconnecting(Event, frozen=True, kw_only=True, tag="ingest.reconnecting"):
    """The account's connection is down (or its worker crashed); attempt ``attempt`` of the
    supervisor starts after ``delay_s``. ``error`` says what failed (no secrets)."""

    attempt: int
    delay_s: float
    error: str | None = None


class FloodWaited(Event, frozen=True, kw_only=True, tag="ingest.flood_wait"):
    """Telegram asked us to wait ``seconds`` before calling ``method`` again."""

    seconds: int
    method: str
    resume_at: datetime


ERROR_MAX_CHARS: Final = 2000  # projections keep this much of an ``IngestFailed.error``


class IngestFailed(Event, frozen=True, kw_only=True, tag="ingest.error"):
    """An error in ingest worth recording (never carries secrets)."""

    error: str
    detail: str | None = None
    # What failed, for filtering: backfill, gap-fill, catch-up, discovery, media, live, session.
    # Free text rather than a Literal so that a newer producer never breaks an older projector.
    error_kind: str | None = None


class IngestStopped(Event, frozen=True, kw_only=True, tag="ingest.stopped"):
    """An ingest process stopped cleanly."""

    reason: str | None = None


AnyEvent = (
    MessagePosted
    | MessageEdited
    | MessageDeleted
    | ReactionsUpdated
    | CountersUpdated
    | MediaStored
    | ChatDiscovered
    | ChatUpdated
    | ChatLeft
    | BackfillStarted
    | BackfillProgressed
    | BackfillCompleted
    | GapFillCompleted
    | CatchUpCompleted
    | IngestStarted
    | IngestConnected
    | IngestDisconnected
    | IngestReconnecting
    | FloodWaited
    | IngestFailed
    | IngestStopped
)

EVENT_TYPES: Final[tuple[type[Event], ...]] = (
    MessagePosted,
    MessageEdited,
    MessageDeleted,
    ReactionsUpdated,
    CountersUpdated,
    MediaStored,
    ChatDiscovered,
    ChatUpdated,
    ChatLeft,
    BackfillStarted,
    BackfillProgressed,
    BackfillCompleted,
    GapFillCompleted,
    CatchUpCompleted,
    IngestStarted,
    IngestConnected,
    IngestDisconnected,
    IngestReconnecting,
    FloodWaited,
    IngestFailed,
    IngestStopped,
)


def kind_of(event_type: type[Event]) -> str:
    """The ``kind`` tag of an event class."""
    tag = event_type.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


KINDS: Final[dict[str, type[Event]]] = {kind_of(t): t for t in EVENT_TYPES}
_KIND_OF_TYPE: Final[dict[type[Event], str]] = {t: k for k, t in KINDS.items()}


def event_kind(event: Event) -> str:
    """The ``kind`` tag of an event (a dict lookup: ``__struct_config__`` builds an object per call)."""
    return _KIND_OF_TYPE[type(event)]


def _default_version(event_type: type[Event]) -> int:
    for f in msgspec.structs.fields(event_type):
        if f.name == "schema_version" and isinstance(f.default, int):
            return f.default
    raise AssertionError(f"{event_type.__name__} has no schema_version default")


# Current schema version per kind: the ``schema_version`` default of its class. Raise a class's
# default when its shape or id rule changes, and add an upcaster for the previous version in
# ``schemas.upcast``.
CURRENT_VERSIONS: Final[dict[str, int]] = {kind: _default_version(t) for kind, t in KINDS.items()}

MESSAGE_KINDS: Final[frozenset[str]] = frozenset(
    kind_of(t)
    for t in (
        MessagePosted,
        MessageEdited,
        MessageDeleted,
        ReactionsUpdated,
        CountersUpdated,
        MediaStored,
    )
)
