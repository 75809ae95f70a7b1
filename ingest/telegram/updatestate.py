"""Telegram's update state of an account, kept in Postgres beside its session.

Telegram numbers the updates of an account (``pts``, ``qts``, ``seq``, ``date``) and of each
channel (its own ``pts``). Given the last state a client processed, ``updates.getDifference`` and
``updates.getChannelDifference`` return everything that happened since, however long ago. The
store is written only after the events a state covers are durable, so a crash re-fetches rather
than loses.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, TypeVar

import psycopg

from ingest.errors import StoreError
from ingest.telegram.threads import off_loop

T = TypeVar("T")

ACCOUNT_WIDE: Final = 0  # entity id of the account-wide state (as Telethon's sessions use it)


@dataclass(frozen=True, slots=True)
class UpdateState:
    """The account-wide position in Telegram's update sequence."""

    pts: int
    qts: int
    date: datetime
    seq: int


@dataclass(slots=True)
class StoredState:
    """What the store holds for one account: the account-wide state and per-channel pts."""

    common: UpdateState | None = None
    channels: dict[int, int] = field(default_factory=dict)  # marked channel id → pts


class UpdateStateStore:
    """Loads and saves an account's update state (blocking calls run in a worker thread)."""

    def __init__(
        self, *, database_url: str, connect_timeout_s: int = 10, executor: Executor | None = None
    ) -> None:
        self._url = database_url
        self._timeout = connect_timeout_s
        self._executor = executor  # ingest_threads(); None: the default pool

    def __repr__(self) -> str:
        return "UpdateStateStore()"

    async def load(self, account: str) -> StoredState:
        """The stored state of ``account`` (empty when never saved)."""

        def run() -> StoredState:
            with psycopg.connect(self._url, connect_timeout=self._timeout) as conn:
                rows = conn.execute(
                    "SELECT entity_id, pts, qts, date, seq FROM public.telegram_update_state "
                    "WHERE account = %s",
                    (account,),
                ).fetchall()
            out = StoredState()
            for entity_id, pts, qts, date, seq in rows:
                if entity_id == ACCOUNT_WIDE:
                    out.common = UpdateState(pts=pts, qts=qts, date=date, seq=seq)
                else:
                    out.channels[entity_id] = pts
            return out

        return await self._run(run, "load the update state")

    async def save_common(self, account: str, state: UpdateState) -> None:
        """Store the account-wide state."""
        await self._upsert(account, ACCOUNT_WIDE, state.pts, state.qts, state.date, state.seq)

    async def save_channel(self, account: str, channel_id: int, pts: int) -> None:
        """Store one channel's pts."""
        await self._upsert(account, channel_id, pts, 0, None, 0)

    async def _upsert(
        self, account: str, entity_id: int, pts: int, qts: int, date: datetime | None, seq: int
    ) -> None:
        def run() -> None:
            with psycopg.connect(self._url, connect_timeout=self._timeout) as conn:
                conn.execute(
                    "INSERT INTO public.telegram_update_state (account, entity_id, pts, qts, date, seq) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (account, entity_id) DO UPDATE SET "
                    "pts = EXCLUDED.pts, qts = EXCLUDED.qts, date = EXCLUDED.date, "
                    "seq = EXCLUDED.seq, updated_at = now()",
                    (account, entity_id, pts, qts, date, seq),
                )

        await self._run(run, "save the update state")

    async def _run(self, fn: Callable[[], T], what: str) -> T:
        try:
            return await off_loop(self._executor, fn)
        except psycopg.Error as e:
            raise StoreError(f"could not {what}: {type(e).__name__}") from e
