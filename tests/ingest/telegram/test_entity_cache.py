"""Entity cache: memory → Postgres ``entity_cache`` → one bulk ``get_dialogs``; ``get_entity`` last."""

from __future__ import annotations

import pytest

from ingest.errors import EntityNotFound, GatewayError
from ingest.telegram.entity_cache import EntityCache, PostgresEntityStore
from ingest.telegram.gateway import PeerRef

from .fakes import FakeGateway

GROUP = PeerRef(
    peer_id=-1_000_000_000_123, kind="channel", access_hash=99, title="G", chat_kind="supergroup"
)
USER = PeerRef(peer_id=77, kind="user", access_hash=5, title="U", chat_kind="private")


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def _cache(gw: FakeGateway, store: PostgresEntityStore | None, clock: Clock) -> EntityCache:
    async def entity(pid: int) -> PeerRef:
        try:
            return await gw.get_entity(pid)
        except KeyError as e:
            raise GatewayError("not found", method="getEntity") from e

    return EntityCache(
        account="main",
        fetch_dialogs=gw.get_dialogs,
        fetch_entity=entity,
        store=store,
        ttl_s=3600,
        min_warmup_interval_s=60,
        clock=clock,
    )


def _count(gw: FakeGateway, method: str) -> int:
    return sum(1 for m, _ in gw.calls if m == method)


@pytest.fixture
def database_url(migrated_db: str) -> str:
    """The tests here use the migrated tables (a copy of the session's template database)."""
    return migrated_db


async def test_first_resolve_warms_up_from_dialogs_then_memory_answers(database_url: str) -> None:
    gw, clock = FakeGateway(dialogs=[GROUP, USER]), Clock()
    cache = _cache(gw, PostgresEntityStore(database_url=database_url), clock)
    assert (await cache.resolve(GROUP.peer_id)).access_hash == 99
    assert (await cache.resolve(USER.peer_id)).access_hash == 5
    assert (await cache.resolve(GROUP.peer_id)).access_hash == 99
    assert (_count(gw, "get_dialogs"), _count(gw, "get_entity")) == (1, 0)


async def test_a_restarted_cache_resolves_from_postgres_without_network(database_url: str) -> None:
    store = PostgresEntityStore(database_url=database_url)
    gw, clock = FakeGateway(dialogs=[GROUP, USER]), Clock()
    await _cache(gw, store, clock).warm_up()
    gw.calls.clear()
    restarted = _cache(gw, store, Clock())
    ref = await restarted.resolve(GROUP.peer_id)
    assert (ref.peer_id, ref.kind, ref.access_hash) == (GROUP.peer_id, "channel", 99)
    assert gw.calls == []


async def test_stale_entries_are_refreshed_by_one_warm_up_and_still_used_if_missing(
    database_url: str,
) -> None:
    gw, clock = FakeGateway(dialogs=[GROUP]), Clock()
    cache = _cache(gw, None, clock)
    await cache.warm_up()
    clock.t += 7200  # past the ttl
    gw.dialogs = [PeerRef(peer_id=GROUP.peer_id, kind="channel", access_hash=99, title="Renamed")]
    assert (await cache.resolve(GROUP.peer_id)).title == "Renamed"
    gw.dialogs = []
    clock.t += 7200
    assert (
        await cache.resolve(GROUP.peer_id)
    ).title == "Renamed"  # stale, but the access hash still works
    assert _count(gw, "get_entity") == 0


async def test_get_entity_is_the_last_resort_and_failure_is_entity_not_found() -> None:
    gw, clock = FakeGateway(dialogs=[]), Clock()
    cache = _cache(gw, None, clock)
    with pytest.raises(EntityNotFound):
        await cache.resolve(12345)
    gw.dialogs = [USER]
    clock.t += 10  # within the warm-up interval: no second get_dialogs, straight to get_entity
    assert (await cache.resolve(USER.peer_id)).access_hash == 5
    assert (_count(gw, "get_dialogs"), _count(gw, "get_entity")) == (1, 2)
