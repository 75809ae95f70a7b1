"""What the log already records for one account, read once at start.

Chat facts (``tg.chat.>``): which chats the account watches (discovery generation, last metadata),
backfill progress/completion. Message facts of the watched chats (``tg.msg.<chat>`` and the
account's ``tg.msg.nochat.<account>``): folded into a ``MessageIndex`` and pruned to recent days,
for gap-fill comparisons and for resolving deletes that arrive without a chat id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from eventlog import EventLog, Record
from ingest.telegram.known import MessageIndex
from schemas.events import (
    BackfillCompleted,
    BackfillProgressed,
    BackfillStarted,
    ChatDiscovered,
    ChatInfo,
    ChatLeft,
    ChatUpdated,
    Event,
)
from schemas.subjects import CHAT_SUBJECTS

log = logging.getLogger(__name__)

_CLOCK_SKEW = timedelta(
    hours=1
)  # margin between Telegram's message dates and the server's append times


@dataclass(slots=True)
class BackfillState:
    """The furthest point a chat's backfill reached."""

    since: datetime
    fetched: int = 0
    last_message_id: int | None = None
    completed: bool = False


@dataclass(slots=True)
class ChatState:
    """One chat as this account's facts in the log describe it."""

    watching: bool = False
    generation: int = -1  # generation of the latest ChatDiscovered (-1: never discovered)
    info: ChatInfo | None = None
    backfill: BackfillState | None = None


@dataclass(slots=True)
class LogState:
    """The account's chats, other accounts' watched chats, and recent message knowledge."""

    account: str
    chats: dict[int, ChatState] = field(default_factory=dict)
    owners: dict[int, str] = field(default_factory=dict)  # chat → account watching it (any account)
    last_seq: int = 0

    def chat(self, chat_id: int) -> ChatState:
        """The state of ``chat_id`` (created empty on first use)."""
        return self.chats.setdefault(chat_id, ChatState())

    def watched(self) -> list[int]:
        """Chats this account watches according to the log."""
        return sorted(c for c, s in self.chats.items() if s.watching)

    def fold(self, record: Record) -> None:
        """Apply one chat-subject record."""
        self.last_seq = max(self.last_seq, record.seq)
        self.apply(record.event)

    def apply(self, ev: Event) -> None:
        """Apply one chat fact (read from the log, or just appended by this account)."""
        if ev.chat_id is None:
            return
        if isinstance(ev, ChatDiscovered):
            self.owners[ev.chat_id] = ev.account
        elif isinstance(ev, ChatLeft) and self.owners.get(ev.chat_id) == ev.account:
            del self.owners[ev.chat_id]
        if ev.account != self.account:
            return
        st = self.chat(ev.chat_id)
        if isinstance(ev, ChatDiscovered):
            if not st.watching:  # a repeated copy of the same discovery changes nothing
                if st.generation >= 0:
                    st.backfill = None  # re-joined: the time away needs its own backfill
                st.generation += 1
            st.watching, st.info = True, ev.chat
        elif isinstance(ev, ChatLeft):
            st.watching = False
        elif isinstance(ev, ChatUpdated):
            st.info = ev.chat
        elif isinstance(ev, BackfillStarted):
            if st.backfill is None or st.backfill.completed:  # a new run (command or re-join)
                st.backfill = BackfillState(since=ev.since)
        elif isinstance(ev, BackfillProgressed):
            bf = st.backfill if st.backfill is not None else BackfillState(since=ev.since)
            if bf.last_message_id is None or ev.last_message_id > bf.last_message_id:
                bf.last_message_id, bf.fetched = ev.last_message_id, ev.fetched
            st.backfill = bf
        elif isinstance(ev, BackfillCompleted):
            bf = st.backfill if st.backfill is not None else BackfillState(since=ev.since)
            bf.completed, bf.fetched = True, ev.fetched
            bf.last_message_id = ev.last_message_id or bf.last_message_id
            st.backfill = bf


async def load_log_state(
    log_: EventLog,
    *,
    account: str,
    index: MessageIndex,
    keep_since: datetime,
    map_since: datetime | None = None,
    chats: Iterable[int] = (),
) -> LogState:
    """Read the account's chat facts and the message facts of its watched chats (plus ``chats``) appended
    since the retention cutoffs."""
    state = LogState(account=account)
    bad = 0
    async for batch in log_.read(1, subjects=[CHAT_SUBJECTS]):
        for rec in batch:
            if isinstance(rec, Record):
                state.fold(rec)
            else:
                bad += 1
    watched = sorted(set(state.watched()) | set(chats))
    subjects = [f"tg.msg.{c}" for c in watched] + [f"tg.msg.nochat.{account}"]
    # Only messages dated after the cutoffs survive the prune below, and a message is appended after
    # it is sent: older records need not be read (a long log would otherwise slow every start).
    cutoff = keep_since if map_since is None else min(keep_since, map_since)
    start = await log_.first_seq_at(cutoff - _CLOCK_SKEW)
    async for batch in log_.read(start, subjects=subjects):
        for rec in batch:
            if isinstance(rec, Record):
                index.observe(rec.event)
                state.last_seq = max(state.last_seq, rec.seq)
            else:
                bad += 1
    index.prune(details_before=keep_since, map_before=map_since)
    log.info(
        "log state %s: %d watched chats, %d recent messages known, %d undecodable records",
        account,
        len(watched),
        len(index),
        bad,
    )
    return state
