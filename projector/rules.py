"""The reference fold: every projection rule stated once, in plain Python, over decoded events.

This is the specification the sinks implement (Postgres incremental and bulk, DuckDB); the contract
test (``tests/contract/``) folds generated event sequences through each sink and through
``fold`` and requires the same tables. It favours being obviously right over being fast: each rule
is a small function over all events of one key, so it does not depend on batching or on the order
events of different keys arrive in. Changing a rule means changing it here and in every sink.

Facts the rules rely on (Telegram): a message's ``date`` never changes (only how well we know it:
an export's local time is read in some zone until a better reading arrives); message ids are per chat
for channels/supergroups and per account elsewhere, so a delete without a chat id names a message
of that account outside channels; an account's ids are unique across its non-channel chats.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from schemas import ids
from schemas.events import (
    ERROR_MAX_CHARS,
    EXACT_DATE,
    AnyEvent,
    BackfillCompleted,
    BackfillProgressed,
    BackfillStarted,
    CatchUpCompleted,
    ChatDiscovered,
    ChatLeft,
    ChatUpdated,
    CountersUpdated,
    FloodWaited,
    GapFillCompleted,
    IngestFailed,
    MediaStored,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    ReactionCount,
    ReactionsUpdated,
    chat_info_time,
    date_rank,
    snapshot_time,
)

# (chat_id, id_scope, message_id): id_scope is "" for channels and the observing account elsewhere,
# because basic groups and private chats number messages per account (schemas.ids.message_scope).
Key = tuple[int, str, int]
ChatKey = tuple[int, int]  # (chat_id, message_id) of a channel message
Snapshot = MessagePosted | MessageEdited


def snapshot_order(seq: int, event: Snapshot) -> tuple[datetime, datetime, int]:
    """Rule "newest snapshot": the greatest (edit_date, date, seq) wins; no edit date sorts first
    (``schemas.events.snapshot_time``, which ingest uses too)."""
    return (*snapshot_time(event.message), seq)


def inferred_kind(chat_id: int) -> str:
    """Rule: a chat known only from its messages is a supergroup (-100…), group (<0) or private."""
    if ids.is_channel_id(chat_id):
        return "supergroup"
    return "group" if chat_id < 0 else "private"


@dataclass(frozen=True)
class Message:
    """One row of ``messages``: the newest snapshot plus what the log adds to it."""

    newest: Snapshot  # its content columns, account and observed_at
    last_seq: int  # seq of the newest snapshot
    first: Snapshot  # the first counted snapshot: the original version, for when an edit arrives
    first_seq: int  # seq of the first sighting (any snapshot, counted or not)
    source: str  # source of the first sighting
    edit_count: int
    is_deleted: bool
    deleted_at: datetime | None
    deleted_seq: int | None
    reactions: tuple[ReactionCount, ...]
    media_sha256: str | None
    media_path: str | None
    counters: tuple[int | None, int | None, int | None]  # current (views, forwards, replies)


@dataclass(frozen=True)
class Version:
    """One row of ``message_versions``: a distinct content (text, media identity) as first seen, of
    a message that has had more than one (docs/decisions/026-versions-only-of-edited-messages.md)."""

    chat_id: int
    id_scope: str
    message_id: int
    content_hash: str
    first: Snapshot
    seq: int


@dataclass(frozen=True)
class PendingDelete:
    """A delete whose message is not (yet) known: ``pending_chat_deletes`` / ``pending_deletes``."""

    scope: int | str  # chat id, or the account for a delete without chat id
    message_id: int
    deleted_at: datetime
    seq: int


@dataclass(frozen=True)
class Group:
    """One row of ``telegram_groups``."""

    chat_id: int
    kind: str
    title: str | None
    username: str | None
    member_count: int | None
    forum: bool
    migrated_to_chat_id: int | None
    photo_id: int | None
    account: str | None
    is_active: bool
    discovered_at: datetime | None
    left_at: datetime | None
    last_activity_at: datetime | None
    message_count: int
    last_seq: int


@dataclass
class Status:
    """One row of ``crawler_status`` (built by ``_status_step`` in seq order)."""

    chat_id: int
    account: str
    status: str = "initializing"
    backfill_fetched: int = 0
    backfill_total: int | None = None
    backfill_completed_at: datetime | None = None
    last_message_at: datetime | None = None
    last_gapfill_at: datetime | None = None
    gapfill_new: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_error_kind: str | None = None
    last_flood_wait_s: int | None = None
    last_flood_wait_at: datetime | None = None


@dataclass(frozen=True)
class Tables:
    """Everything the projections hold, keyed like their primary keys."""

    messages: dict[Key, Message]
    versions: dict[tuple[int, str, int, str], Version]
    pending_chat_deletes: dict[ChatKey, PendingDelete]
    pending_deletes: dict[tuple[str, int], PendingDelete]
    groups: dict[int, Group]
    statuses: dict[int, Status]


def _first_delete(deletes: list[tuple[int, MessageDeleted]]) -> tuple[datetime, int] | None:
    """Rule "tombstone": deleted_at is the earliest observation of any delete that names the message
    (the log may hold a spooled observation after a later one); deleted_seq the earliest record
    (docs/decisions/020-deleted-at-is-the-earliest-observation.md)."""
    if not deletes:
        return None
    return min(e.observed_at for _, e in deletes), min(seq for seq, _ in deletes)


def counted(snaps: list[tuple[int, Snapshot]]) -> list[tuple[int, Snapshot]]:
    """Rule "date readings": the snapshots of one message that count. Exact dates outrank local
    ones (an export's times without offset, read in a zone given with --tz, which outranks a
    guessed zone); with exact ones, every exact one counts; without, only the latest (by seq) of
    the best-ranked local readings, so a re-import in the right zone replaces what an earlier one
    read, dates and all, and a correction is not an edit
    (docs/decisions/041-corrected-export-dates.md)."""
    top_seq, top = max(snaps, key=lambda s: (date_rank(s[1].message), s[0]))
    if date_rank(top.message) == EXACT_DATE:
        return [s for s in snaps if date_rank(s[1].message) == EXACT_DATE]
    return [(top_seq, top)]


def _message(
    key: Key,
    all_snaps: list[tuple[int, Snapshot]],
    deletes: list[tuple[int, MessageDeleted]],
    reactions: list[tuple[int, ReactionsUpdated]],
    media: list[tuple[int, MediaStored]],
    counters: list[tuple[int, CountersUpdated]],
) -> Message:
    snaps = counted(all_snaps)
    last_seq, newest = max(snaps, key=lambda s: snapshot_order(*s))
    _, first = min(snaps, key=lambda s: s[0])
    # The first sighting (seq, source) is of any snapshot: when the log first saw the message.
    first_seq, first_seen = min(all_snaps, key=lambda s: s[0])
    # Rule "edit count": the edits Telegram reported, i.e. distinct edit dates seen (a formatting-only
    # edit counts; a->b->a counts twice); distinct contents are message_versions' business
    # (docs/decisions/019-edit-count-counts-edit-dates.md).
    edit_dates = {e.message.edit_date for _, e in snaps if e.message.edit_date is not None}
    # Rule "reactions": the latest by seq of the newest snapshot's summary and the summaries that
    # arrived after it (an update older than the shown snapshot is already part of it).
    summary = (last_seq, newest.message.reactions)
    for seq, r in reactions:
        if seq > summary[0]:
            summary = (seq, r.reactions)
    # Rule "media stored": the latest store of a message seen before it (a store for an unknown
    # message names nothing yet).
    stored = [(seq, m) for seq, m in media if seq > first_seq]
    sha, path = (None, None)
    if stored:
        _, last_store = max(stored, key=lambda s: s[0])
        sha, path = last_store.sha256, last_store.path
    tomb = _first_delete(deletes)
    return Message(
        newest=newest,
        last_seq=last_seq,
        first=first,
        first_seq=first_seq,
        source=first_seen.source,
        edit_count=len(edit_dates),
        is_deleted=tomb is not None,
        deleted_at=None if tomb is None else tomb[0],
        deleted_seq=None if tomb is None else tomb[1],
        reactions=summary[1],
        media_sha256=sha,
        counters=_counters(last_seq, newest, counters),
        media_path=path,
    )


def _counters(
    last_seq: int, newest: Snapshot, updates: list[tuple[int, CountersUpdated]]
) -> tuple[int | None, int | None, int | None]:
    """Rule "engagement counters": per counter, the latest value reported after the newest snapshot
    (a counter an update does not report keeps its value), else the snapshot's."""
    m = newest.message
    views, forwards, replies = m.views, m.forwards, m.replies
    for seq, u in sorted(updates, key=lambda s: s[0]):
        if seq > last_seq:
            views = views if u.views is None else u.views
            forwards = forwards if u.forwards is None else u.forwards
            replies = replies if u.replies is None else u.replies
    return views, forwards, replies


def _messages(records: list[tuple[int, AnyEvent]]) -> Tables:
    """The message tables, then the chat tables that count them."""
    snaps: dict[Key, list[tuple[int, Snapshot]]] = defaultdict(list)
    chat_deletes: dict[ChatKey, list[tuple[int, MessageDeleted]]] = defaultdict(list)
    account_deletes: dict[tuple[str, int], list[tuple[int, MessageDeleted]]] = defaultdict(list)
    reactions: dict[Key, list[tuple[int, ReactionsUpdated]]] = defaultdict(list)
    media: dict[Key, list[tuple[int, MediaStored]]] = defaultdict(list)
    counters: dict[Key, list[tuple[int, CountersUpdated]]] = defaultdict(list)
    for seq, e in records:
        if isinstance(e, MessagePosted | MessageEdited) and e.chat_id is not None:
            scope = ids.message_scope(e.account, e.chat_id)
            snaps[(e.chat_id, scope, e.message.message_id)].append((seq, e))
        elif isinstance(e, MessageDeleted):
            # Rule "deletes": a channel delete names (chat, id); any other delete, with or without a
            # chat id, names the account's own message with that id.
            if e.chat_id is not None and ids.is_channel_id(e.chat_id):
                chat_deletes[(e.chat_id, e.message_id)].append((seq, e))
            else:
                account_deletes[(e.account, e.message_id)].append((seq, e))
        elif isinstance(e, ReactionsUpdated) and e.chat_id is not None:
            scope = ids.message_scope(e.account, e.chat_id)
            reactions[(e.chat_id, scope, e.message_id)].append((seq, e))
        elif isinstance(e, CountersUpdated) and e.chat_id is not None:
            scope = ids.message_scope(e.account, e.chat_id)
            counters[(e.chat_id, scope, e.message_id)].append((seq, e))
        elif isinstance(e, MediaStored) and e.chat_id is not None:
            scope = ids.message_scope(e.account, e.chat_id)
            media[(e.chat_id, scope, e.message_id)].append((seq, e))

    messages: dict[Key, Message] = {}
    matched_accounts: set[tuple[str, int]] = set()
    for key, key_snaps in snaps.items():
        chat_id, scope, message_id = key
        if scope == "":
            deletes = chat_deletes.get((chat_id, message_id), [])
        else:
            deletes = account_deletes.get((scope, message_id), [])
            if deletes:
                matched_accounts.add((scope, message_id))
        messages[key] = _message(key, key_snaps, deletes, reactions[key], media[key], counters[key])

    # Rule "versions": every distinct content of a message as first seen, kept only for messages
    # that have more than one; a message with one content is its messages row (whose first
    # sighting columns give the original version when a second content arrives).
    versions: dict[tuple[int, str, int, str], Version] = {}
    for (chat_id, scope, message_id), key_snaps in snaps.items():
        contents: dict[str, Version] = {}
        for seq, e in sorted(counted(key_snaps), key=lambda s: s[0]):
            digest = ids.content_digest(e.message)
            contents.setdefault(digest, Version(chat_id, scope, message_id, digest, e, seq))
        if len(contents) > 1:
            versions.update(((chat_id, scope, message_id, d), v) for d, v in contents.items())
    channel_keys = {(chat_id, m) for chat_id, scope, m in snaps if scope == ""}

    # Rule "pending deletes": a delete that names no known message waits for it (earliest wins).
    return Tables(
        messages=messages,
        versions=versions,
        pending_chat_deletes={
            key: _pending(d, key[0], key[1])
            for key, d in chat_deletes.items()
            if key not in channel_keys
        },
        pending_deletes={
            key: _pending(d, key[0], key[1])
            for key, d in account_deletes.items()
            if key not in matched_accounts
        },
        groups=_groups(records, messages),
        statuses=_statuses(records, messages),
    )


def _pending(
    deletes: list[tuple[int, MessageDeleted]], scope: int | str, message_id: int
) -> PendingDelete:
    first = _first_delete(deletes)
    assert first is not None
    return PendingDelete(scope, message_id, first[0], first[1])


def _title_of(event: Snapshot) -> str | None:
    """The new title a service message announces (a title change), else None."""
    action = event.message.action
    if action is None or action.title is None or "title" not in action.type.lower():
        return None
    return action.title


def migration_of(event: Snapshot) -> tuple[int, int] | None:
    """(basic group, supergroup) a migration service message names (``schemas.ids.migration_link``)."""
    return None if event.chat_id is None else ids.migration_link(event.chat_id, event.message)


MetaOrder = tuple[datetime, int]  # (Telegram's time of the fact, seq)


def _groups(records: list[tuple[int, AnyEvent]], messages: dict[Key, Message]) -> dict[int, Group]:
    """Rule "chat metadata": the newest by Telegram's own time wins, whatever the order of arrival
    (docs/decisions/028-chat-metadata-by-telegram-time.md). The chat's kind, username, member
    count, forum flag and account come from the discovery or update with the greatest
    (``chat_info_time``, seq); its title from that and every title-change message (time: the
    message's date), the greatest (time, seq) winning; one that names no title (an import's link of
    a basic group whose name it does not know) does not clear it. Rule "migration link": the supergroup a
    basic group became is the newest by (time, seq) of the facts that name one: a discovery or
    update with ``migrated_to``, a migration service message in either chat (its date); one that
    names none does not undo it, and the link alone gives the basic group a row. Rule "chat
    photo": likewise the newest of the discoveries and updates that name a photo and the
    photo-change messages (a removal shows none). Presence (active or left) follows the
    latest discovery or leave by seq. A chat known only from messages or a leave gets a kind
    inferred from its id and its first message's account
    (docs/decisions/021-chat-rows-and-message-observation.md)."""
    meta: dict[int, tuple[MetaOrder, ChatDiscovered | ChatUpdated]] = {}
    titles: dict[int, tuple[MetaOrder, str | None]] = {}
    meta_seq: dict[int, int] = {}
    presence: dict[int, ChatDiscovered | ChatLeft] = {}
    discovered_at: dict[int, datetime] = {}
    first_account: dict[int, str] = {}
    links: dict[int, tuple[MetaOrder, int]] = {}
    photos: dict[int, tuple[MetaOrder, int | None]] = {}

    def newest_title(chat_id: int, order: MetaOrder, title: str | None) -> None:
        known = titles.get(chat_id)
        if known is None or order > known[0]:
            titles[chat_id] = (order, title)

    def newest_link(chat_id: int, order: MetaOrder, to: int) -> None:
        known = links.get(chat_id)
        if known is None or order > known[0]:
            links[chat_id] = (order, to)

    def newest_photo(chat_id: int, order: MetaOrder, photo: int | None) -> None:
        known = photos.get(chat_id)
        if known is None or order > known[0]:
            photos[chat_id] = (order, photo)

    for seq, e in records:  # in seq order
        if isinstance(e, ChatDiscovered | ChatUpdated):
            chat_id = e.chat.chat_id
            order = (chat_info_time(e), seq)
            known = meta.get(chat_id)
            if known is None or order > known[0]:
                meta[chat_id] = (order, e)
            meta_seq[chat_id] = seq
            if e.chat.title is not None:  # an update that names no title keeps the shown one
                newest_title(chat_id, order, e.chat.title)
            if e.chat.migrated_to is not None:
                newest_link(chat_id, order, e.chat.migrated_to)
            if e.chat.photo_id is not None:
                newest_photo(chat_id, order, e.chat.photo_id)
            if isinstance(e, ChatDiscovered):
                presence[chat_id] = e
                discovered_at.setdefault(chat_id, e.observed_at)
        elif isinstance(e, ChatLeft) and e.chat_id is not None:
            presence[e.chat_id] = e
        elif isinstance(e, MessagePosted | MessageEdited) and e.chat_id is not None:
            first_account.setdefault(e.chat_id, e.account)
            title = _title_of(e)
            if title is not None:
                newest_title(e.chat_id, (e.message.date, seq), title)
            link = migration_of(e)
            if link is not None:
                newest_link(link[0], (e.message.date, seq), link[1])
            changed, photo = ids.chat_photo_change(e.message)
            if changed:
                newest_photo(e.chat_id, (e.message.date, seq), photo)
    by_chat: dict[int, list[Message]] = defaultdict(list)
    for (chat_id, _, _), row in messages.items():
        by_chat[chat_id].append(row)

    groups: dict[int, Group] = {}
    for chat_id in {*by_chat, *meta, *presence, *links}:
        rows = by_chat.get(chat_id, [])
        newest = meta.get(chat_id)
        info = None if newest is None else newest[1].chat
        left = presence.get(chat_id)
        left_at = left.observed_at if isinstance(left, ChatLeft) else None
        shown = titles.get(chat_id)
        groups[chat_id] = Group(
            chat_id=chat_id,
            kind=inferred_kind(chat_id) if info is None else info.kind,
            title=None if shown is None else shown[1],
            username=None if info is None else info.username,
            member_count=None if info is None else info.member_count,
            forum=False if info is None else info.forum,
            migrated_to_chat_id=links[chat_id][1] if chat_id in links else None,
            photo_id=photos[chat_id][1] if chat_id in photos else None,
            account=first_account.get(chat_id) if newest is None else newest[1].account,
            is_active=left_at is None,
            discovered_at=discovered_at.get(chat_id),
            left_at=left_at,
            last_activity_at=max((r.newest.message.date for r in rows), default=None),
            message_count=len(rows),
            last_seq=max([r.last_seq for r in rows] + [meta_seq.get(chat_id, 0)]),
        )
    return groups


def _statuses(
    records: list[tuple[int, AnyEvent]], messages: dict[Key, Message]
) -> dict[int, Status]:
    """Rule "crawler status": status events fold in seq order into a row per chat, created by the
    first one; the last message date is the newest message date of the chat, whenever it came."""
    statuses: dict[int, Status] = {}
    for _, e in records:
        chat_id = e.chat.chat_id if isinstance(e, ChatDiscovered) else e.chat_id
        if chat_id is None or not isinstance(e, _STATUS_EVENTS):
            continue
        status = statuses.setdefault(chat_id, Status(chat_id, e.account))
        _status_step(status, e)
    for (chat_id, _, _), row in messages.items():
        known = statuses.get(chat_id)
        if known is not None:
            date = row.newest.message.date
            if known.last_message_at is None or date > known.last_message_at:
                known.last_message_at = date
    return statuses


_STATUS_EVENTS: Final = (
    ChatDiscovered,
    ChatLeft,
    BackfillStarted,
    BackfillProgressed,
    BackfillCompleted,
    GapFillCompleted,
    CatchUpCompleted,
    FloodWaited,
    IngestFailed,
)


def _status_step(s: Status, e: AnyEvent) -> None:
    """One status event applied to its chat's row."""
    if isinstance(e, ChatDiscovered):
        s.account = e.account
        if s.status == "left":
            s.status = "initializing"
    elif isinstance(e, ChatLeft):
        s.status = "left"
    elif isinstance(e, BackfillStarted):
        s.status = "initializing"
        s.backfill_total = e.estimated_total if e.estimated_total is not None else s.backfill_total
    elif isinstance(e, BackfillProgressed):
        s.backfill_fetched = e.fetched
        s.backfill_total = e.estimated_total if e.estimated_total is not None else s.backfill_total
    elif isinstance(e, BackfillCompleted):
        s.status, s.backfill_fetched, s.backfill_completed_at = "active", e.fetched, e.observed_at
    elif isinstance(e, GapFillCompleted):
        last = s.last_gapfill_at
        s.last_gapfill_at = e.observed_at if last is None else max(last, e.observed_at)
        s.gapfill_new += e.new
        _recover(s)
    elif isinstance(e, CatchUpCompleted):
        _recover(s)
    elif isinstance(e, FloodWaited):
        # The wait observed last (by observation time) wins: Telegram's newest instruction.
        if s.last_flood_wait_at is None or s.last_flood_wait_at <= e.observed_at:
            s.last_flood_wait_s, s.last_flood_wait_at = e.seconds, e.observed_at
    elif isinstance(e, IngestFailed):
        s.status = "error"
        s.last_error, s.last_error_at = e.error[:ERROR_MAX_CHARS], e.observed_at
        s.last_error_kind = e.error_kind


def _recover(s: Status) -> None:
    """Rule "recovery": a pass that reached Telegram for the chat (gap-fill, catch-up) ends its
    error status: active again once its backfill completed, else still initializing. The last
    error stays for the record."""
    if s.status == "error":
        s.status = "active" if s.backfill_completed_at is not None else "initializing"


def fold(records: Iterable[tuple[int, AnyEvent]]) -> Tables:
    """The projection tables of ``records`` ((seq, event) pairs), whatever order they are given in."""
    return _messages(sorted(records, key=lambda r: r[0]))
