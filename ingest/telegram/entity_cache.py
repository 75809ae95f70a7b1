"""Peer resolution without flood risk: memory → Postgres ``entity_cache`` → bulk ``get_dialogs``.

Repeated ``get_entity`` calls are the main cause of long flood waits (Telethon#494), so a single
``get_entity`` is the last resort. Entries older than ``ttl_s`` are refreshed by a dialogs warm-up
(at most one per ``min_warmup_interval_s``); if the warm-up does not have them the stale entry is
still used, because access hashes of an account do not change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Executor
from typing import Protocol, cast

import psycopg

from ingest.errors import EntityNotFound, GatewayError, StoreError
from ingest.telegram.gateway import PeerKind, PeerRef
from ingest.telegram.threads import off_loop

log = logging.getLogger(__name__)

FetchDialogs = Callable[[], Awaitable[list[PeerRef]]]
FetchEntity = Callable[[int], Awaitable[PeerRef]]


class EntityStore(Protocol):
    """Durable peers per account."""

    async def select_peers(
        self, account: str, peer_ids: Sequence[int]
    ) -> list[tuple[PeerRef, float]]:
        """Stored peers with their update time (unix seconds)."""
        ...

    async def upsert_peers(self, account: str, peers: Sequence[PeerRef]) -> None:
        """Insert or refresh peers."""
        ...


class PostgresEntityStore:
    """``EntityStore`` on the ``entity_cache`` table; blocking calls run in a worker thread."""

    def __init__(
        self, *, database_url: str, connect_timeout_s: int = 10, executor: Executor | None = None
    ) -> None:
        self._url = database_url
        self._timeout = connect_timeout_s
        self._executor = executor  # ingest_threads(); None: the default pool

    def __repr__(self) -> str:
        return "PostgresEntityStore()"

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self._url, connect_timeout=self._timeout, autocommit=True)

    async def select_peers(
        self, account: str, peer_ids: Sequence[int]
    ) -> list[tuple[PeerRef, float]]:
        """Stored peers with their update time."""

        def run() -> list[tuple[PeerRef, float]]:
            with self._connect() as conn:
                rows = conn.execute(
                    "SELECT peer_id, access_hash, kind, username, title, extract(epoch FROM updated_at) "
                    "FROM public.entity_cache WHERE account = %s AND peer_id = ANY(%s)",
                    (account, list(peer_ids)),
                ).fetchall()
            out = []
            for pid, ah, kind, username, title, ts in rows:
                chat_kind = {"user": "private", "chat": "group"}.get(kind)
                ref = PeerRef(
                    peer_id=pid,
                    kind=cast(PeerKind, kind),
                    access_hash=ah,
                    username=username,
                    title=title,
                    chat_kind=chat_kind,  # type: ignore[arg-type]
                )
                out.append((ref, float(ts)))
            return out

        try:
            return await off_loop(self._executor, run)
        except psycopg.Error as e:
            raise StoreError(f"select entity_cache: {type(e).__name__}") from e

    async def upsert_peers(self, account: str, peers: Sequence[PeerRef]) -> None:
        """Insert or refresh peers (one transaction)."""
        rows = [(account, p.peer_id, p.access_hash, p.kind, p.username, p.title) for p in peers]

        def run() -> None:
            with self._connect() as conn, conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO public.entity_cache (account, peer_id, access_hash, kind, username, title) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (account, peer_id) DO UPDATE SET "
                    "access_hash = COALESCE(EXCLUDED.access_hash, entity_cache.access_hash), kind = EXCLUDED.kind, "
                    "username = EXCLUDED.username, title = EXCLUDED.title, updated_at = now()",
                    rows,
                )

        if not rows:
            return
        try:
            await off_loop(self._executor, run)
        except psycopg.Error as e:
            raise StoreError(f"upsert entity_cache: {type(e).__name__}") from e


class EntityCache:
    """Resolves marked peer ids for one account, cheapest source first."""

    def __init__(
        self,
        *,
        account: str,
        fetch_dialogs: FetchDialogs,
        fetch_entity: FetchEntity,
        store: EntityStore | None = None,
        ttl_s: float = 86400.0,
        min_warmup_interval_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._account = account
        self._fetch_dialogs = fetch_dialogs
        self._fetch_entity = fetch_entity
        self._store = store
        self._ttl_s = ttl_s
        self._min_warmup_interval_s = min_warmup_interval_s
        self._clock = clock
        self._memory: dict[int, tuple[PeerRef, float]] = {}
        self._last_warmup: float | None = None
        self._warmup_lock = asyncio.Lock()
        self.stats = {"memory": 0, "store": 0, "dialogs": 0, "entity": 0}

    def peek(self, peer_id: int) -> PeerRef | None:
        """The in-memory entry, if any (never does I/O; safe in handlers)."""
        hit = self._memory.get(peer_id)
        return None if hit is None else hit[0]

    def remember(self, peers: Iterable[PeerRef], *, at: float | None = None) -> None:
        """Put peers into memory (a peer without access hash never replaces one with it)."""
        now = self._clock() if at is None else at
        for p in peers:
            old = self._memory.get(p.peer_id)
            if old is not None and p.access_hash is None and old[0].access_hash is not None:
                continue
            self._memory[p.peer_id] = (p, now)

    def _fresh(self, stamp: float) -> bool:
        return self._clock() - stamp <= self._ttl_s

    async def resolve(self, peer_id: int) -> PeerRef:
        """Memory → store → dialogs warm-up → ``get_entity``; ``EntityNotFound`` if all fail."""
        hit = self._memory.get(peer_id)
        if hit is not None and self._fresh(hit[1]):
            self.stats["memory"] += 1
            return hit[0]
        if hit is None and self._store is not None:
            stored = await self._store.select_peers(self._account, [peer_id])
            if stored:
                ref, stamp = stored[0]
                self._memory[peer_id] = (ref, stamp)
                hit = (ref, stamp)
                if self._fresh(stamp):
                    self.stats["store"] += 1
                    return ref
        await self.warm_up(force=False)
        fresh = self._memory.get(peer_id)
        if fresh is not None and (hit is None or fresh[1] > hit[1]):
            self.stats["dialogs"] += 1
            return fresh[0]
        if hit is not None:
            return hit[0]  # stale but usable: access hashes do not change
        try:
            ref = await self._fetch_entity(peer_id)
        except GatewayError as e:
            raise EntityNotFound(peer_id) from e
        self.stats["entity"] += 1
        self.remember([ref])
        await self._persist([ref])
        return ref

    async def warm_up(self, *, force: bool = True) -> list[PeerRef] | None:
        """Load every dialog in bulk into memory and the store; skipped if one ran very recently."""
        async with self._warmup_lock:
            now = self._clock()
            if (
                not force
                and self._last_warmup is not None
                and now - self._last_warmup < self._min_warmup_interval_s
            ):
                return None
            self._last_warmup = now
            dialogs = await self._fetch_dialogs()
            self.remember(dialogs)
            await self._persist(dialogs)
            log.info("entity cache %s: warmed up with %d dialogs", self._account, len(dialogs))
            return dialogs

    async def _persist(self, peers: Sequence[PeerRef]) -> None:
        if self._store is None:
            return
        try:
            await self._store.upsert_peers(self._account, peers)
        except StoreError as e:  # the cache still works from memory; the next warm-up retries
            log.warning(
                "entity cache %s: could not persist %d peers: %s", self._account, len(peers), e
            )
