"""Chat assignment across accounts, and discovery's discovered/updated/left facts in a real JetStream."""

from __future__ import annotations

from datetime import timedelta

import pytest

from eventlog import EventLog
from ingest.telegram.assignment import ChatAssignment, parse_assignments, rank
from ingest.telegram.discovery import Discovery
from ingest.telegram.entity_cache import EntityCache
from ingest.telegram.gateway import PeerRef
from ingest.telegram.known import MessageIndex
from ingest.telegram.logstate import LogState, load_log_state
from schemas import ids
from schemas.events import ChatDiscovered, ChatLeft, ChatUpdated

from .fakes import FakeGateway
from .logsink import LogSink, read_all
from .tl import BASE

G1 = PeerRef(
    peer_id=-1_000_000_000_001, kind="channel", access_hash=1, title="One", chat_kind="supergroup"
)
G2 = PeerRef(peer_id=-2, kind="chat", title="Two", chat_kind="group")
DM = PeerRef(peer_id=5, kind="user", access_hash=1, title="Friend", chat_kind="private")


def test_parse_assignments_and_reject_garbage() -> None:
    assert parse_assignments(" -1001:main, -2:second ,") == {-1001: "main", -2: "second"}
    with pytest.raises(ValueError, match="not chat_id:account"):
        parse_assignments("-1001")


def test_pinned_chats_go_to_their_account_only() -> None:
    a = ChatAssignment(explicit={-2: "second"})
    assert not a.claim(-2, "main") and a.claim(-2, "second")


def test_first_claim_is_sticky_until_released() -> None:
    a = ChatAssignment()
    assert a.claim(-7, "main")
    assert not a.claim(-7, "second")
    a.release(-7, "main")
    assert a.claim(-7, "second")


def test_when_both_saw_the_chat_the_stable_hash_decides() -> None:
    a = ChatAssignment()
    a.see(-9, "main")
    a.see(-9, "second")
    winner = max(("main", "second"), key=lambda acc: rank(-9, acc))
    loser = "second" if winner == "main" else "main"
    assert not a.claim(-9, loser) and a.claim(-9, winner)


def _discovery(gw: FakeGateway, sink: LogSink, state: LogState, account: str = "main") -> Discovery:
    cache = EntityCache(account=account, fetch_dialogs=gw.get_dialogs, fetch_entity=gw.get_entity)
    return Discovery(
        account=account,
        cache=cache,
        sink=sink,
        state=state,
        assignment=ChatAssignment(),
        clock=lambda: BASE,
    )


async def test_discovery_records_new_renamed_and_vanished_groups(event_log: EventLog) -> None:
    gw = FakeGateway(dialogs=[G1, G2, DM])
    state = LogState(account="main")
    async with LogSink(event_log) as sink:
        d = _discovery(gw, sink, state)
        first = await d.run_once()
        gw.dialogs = [
            PeerRef(
                peer_id=G1.peer_id,
                kind="channel",
                access_hash=1,
                title="One!",
                chat_kind="supergroup",
            ),
            DM,
        ]
        second = await d.run_once()
        third = await d.run_once()
    assert (sorted(first.discovered), second.updated, second.left) == (
        [G1.peer_id, G2.peer_id],
        [G1.peer_id],
        [G2.peer_id],
    )
    assert (third.discovered, third.updated, third.left) == ([], [], [])
    events = await read_all(event_log)
    assert [type(e) for e in events] == [ChatDiscovered, ChatDiscovered, ChatUpdated, ChatLeft]
    assert events[-1].event_id == ids.left_id("main", G2.peer_id, 0)


async def test_a_rejoined_group_is_a_new_generation_with_a_new_backfill(
    event_log: EventLog,
) -> None:
    gw = FakeGateway(dialogs=[G2])
    async with LogSink(event_log) as sink:
        d = _discovery(gw, sink, LogState(account="main"))
        await d.run_once()
        gw.dialogs = []
        await d.run_once()
    state = await load_log_state(
        event_log, account="main", index=MessageIndex(account="main"), keep_since=BASE
    )
    gw.dialogs = [G2]
    rejoined: list[int] = []
    async with LogSink(event_log) as sink:
        d = _discovery(gw, sink, state)
        d._on_discovered = rejoined.append
        await d.run_once()
    found = [e.event_id for e in await read_all(event_log) if isinstance(e, ChatDiscovered)]
    assert found == [
        ids.discovered_id("main", G2.peer_id, 0),
        ids.discovered_id("main", G2.peer_id, 1),
    ]
    assert rejoined == [G2.peer_id] and state.chat(G2.peer_id).backfill is None


async def test_a_name_changed_back_is_recorded_each_time(event_log: EventLog) -> None:
    """One → Two → One within JetStream's dedup window: the return to One is a new fact."""
    gw = FakeGateway(dialogs=[G2])
    ticks = iter(range(10))
    cache = EntityCache(account="main", fetch_dialogs=gw.get_dialogs, fetch_entity=gw.get_entity)
    async with LogSink(event_log) as sink:
        d = Discovery(
            account="main",
            cache=cache,
            sink=sink,
            state=LogState(account="main"),
            assignment=ChatAssignment(),
            clock=lambda: BASE + timedelta(minutes=next(ticks)),
        )
        await d.run_once()
        for title in ("One", "Two", "One"):
            gw.dialogs = [PeerRef(peer_id=-2, kind="chat", title=title, chat_kind="group")]
            assert (await d.run_once()).updated == [-2]
    updates = [e for e in await read_all(event_log) if isinstance(e, ChatUpdated)]
    assert [e.chat.title for e in updates] == ["One", "Two", "One"]


async def test_a_new_chat_photo_is_an_update(event_log: EventLog) -> None:
    gw = FakeGateway(dialogs=[G2])
    async with LogSink(event_log) as sink:
        d = _discovery(gw, sink, LogState(account="main"))
        await d.run_once()
        gw.dialogs = [PeerRef(peer_id=-2, kind="chat", title="Two", chat_kind="group", photo_id=8)]
        assert (await d.run_once()).updated == [-2]
    updates = [e for e in await read_all(event_log) if isinstance(e, ChatUpdated)]
    assert [e.chat.photo_id for e in updates] == [8]
