"""Group discovery: compare the account's dialogs with the chats it watches, record the difference.

New groups → ``ChatDiscovered`` (then a backfill is queued); groups gone from the dialogs →
``ChatLeft``; changed metadata → ``ChatUpdated``. It runs beside the live handlers and never blocks
them: dialogs come through the rate limiter and the entity cache warm-up in the worker's task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ingest.seams import EventSink
from ingest.telegram.assignment import ChatAssignment
from ingest.telegram.entity_cache import EntityCache
from ingest.telegram.gateway import PeerRef
from ingest.telegram.logstate import LogState
from schemas import ids
from schemas.events import ChatDiscovered, ChatInfo, ChatLeft, ChatUpdated, Event

log = logging.getLogger(__name__)


def chat_info(peer: PeerRef) -> ChatInfo:
    """The ``ChatInfo`` of a dialog peer."""
    return ChatInfo(
        chat_id=peer.peer_id,
        kind=peer.chat_kind or "group",
        title=peer.title,
        username=peer.username,
        member_count=peer.member_count,
        forum=peer.forum,
        photo_id=peer.photo_id,
    )


def _same(a: ChatInfo | None, b: ChatInfo) -> bool:
    # member counts drift constantly; only identity changes are facts worth an event
    return a is not None and (a.kind, a.title, a.username, a.forum, a.photo_id) == (
        b.kind,
        b.title,
        b.username,
        b.forum,
        b.photo_id,
    )


@dataclass(slots=True)
class DiscoveryResult:
    """What one discovery pass changed."""

    discovered: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)


class Discovery:
    """One account's discovery passes."""

    def __init__(
        self,
        *,
        account: str,
        cache: EntityCache,
        sink: EventSink,
        state: LogState,
        assignment: ChatAssignment,
        kinds: Collection[str] = ("group", "supergroup", "channel"),
        on_discovered: Callable[[int], None] = lambda _c: None,
        on_left: Callable[[int], None] = lambda _c: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._account = account
        self._cache = cache
        self._sink = sink
        self._state = state
        self._assignment = assignment
        self._kinds = set(kinds)
        self._on_discovered = on_discovered
        self._on_left = on_left
        self._clock = clock

    async def run_once(self) -> DiscoveryResult:
        """Fetch the dialogs and append discovered/left/updated facts (acked before returning)."""
        dialogs = await self._cache.warm_up(force=True) or []
        groups = {d.peer_id: d for d in dialogs if d.active and d.chat_kind in self._kinds}
        for chat_id in groups:
            self._assignment.see(chat_id, self._account)
        now = self._clock()
        result = DiscoveryResult()
        events: list[Event] = []
        for chat_id, peer in sorted(groups.items()):
            if not self._assignment.claim(chat_id, self._account):
                continue
            st = self._state.chat(chat_id)
            info = chat_info(peer)
            if not st.watching:
                generation = st.generation + 1
                events.append(
                    ChatDiscovered(
                        event_id=ids.discovered_id(self._account, chat_id, generation),
                        account=self._account,
                        observed_at=now,
                        source="live",
                        chat_id=chat_id,
                        chat=info,
                    )
                )
                result.discovered.append(chat_id)
            elif not _same(st.info, info):
                events.append(
                    ChatUpdated(
                        event_id=ids.chat_updated_id(info, observed_at=now),
                        account=self._account,
                        observed_at=now,
                        source="live",
                        chat_id=chat_id,
                        chat=info,
                    )
                )
                result.updated.append(chat_id)
        for chat_id in self._state.watched():
            if chat_id in groups and self._assignment.owner(chat_id) == self._account:
                continue
            gen = self._state.chat(chat_id).generation
            reason = "not in dialogs" if chat_id not in groups else "assigned to another account"
            events.append(
                ChatLeft(
                    event_id=ids.left_id(self._account, chat_id, max(gen, 0)),
                    account=self._account,
                    observed_at=now,
                    source="live",
                    chat_id=chat_id,
                    reason=reason,
                )
            )
            result.left.append(chat_id)
        # Fold our own facts first, exactly as a restart would read them back: from the moment a
        # leave is submitted no live update of that chat is recorded any more (a failed submit
        # restarts the worker, which reloads its state from the log).
        for ev in events:
            self._state.apply(ev)
        if events:
            await self._sink.submit_many(events)
        for chat_id in result.left:
            self._assignment.release(chat_id, self._account)
        for chat_id in result.discovered:
            self._on_discovered(chat_id)
        for chat_id in result.left:
            self._on_left(chat_id)
        if events:
            log.info(
                "discovery %s: %d discovered, %d left, %d updated",
                self._account,
                len(result.discovered),
                len(result.left),
                len(result.updated),
            )
        return result
