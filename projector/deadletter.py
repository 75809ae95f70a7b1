"""Dead letters in ``public.failed_messages``: recording, listing and marking retries."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, cast

import psycopg

from projector.errors import ProjectionUnavailable
from projector.records import DeadLetter

INSERT_DEAD_LETTER: Final = (
    "INSERT INTO public.failed_messages (projection, seq, event_id, chat_id, subject, payload, error) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (projection, seq) DO UPDATE SET error = EXCLUDED.error, resolved = false, resolved_at = NULL "
    "WHERE failed_messages.resolved"
)


def dead_letter_params(projection: str, letter: DeadLetter) -> tuple[object, ...]:
    """Parameters of ``INSERT_DEAD_LETTER``."""
    return (
        projection,
        letter.seq,
        letter.event_id,
        letter.chat_id,
        letter.subject,
        letter.data,
        letter.error[:4000],
    )


@dataclass(frozen=True)
class StoredDeadLetter:
    """A row of ``failed_messages``."""

    id: int
    projection: str
    seq: int
    subject: str
    payload: bytes


class DeadLetterStore:
    """Reads and updates ``failed_messages`` over its own autocommit connection."""

    def __init__(self, *, database_url: str, connect_timeout_s: float = 10.0) -> None:
        self._url = database_url
        self._timeout_s = connect_timeout_s
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        # The projections and the retry command share the store: callers that find no connection
        # at once must wait for one connect, not each open their own (all but the last one kept
        # would be dropped open).
        self._connecting = asyncio.Lock()

    async def _connection(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        async with self._connecting:
            if self._conn is None or self._conn.closed:
                try:
                    self._conn = await psycopg.AsyncConnection.connect(
                        self._url, autocommit=True, connect_timeout=int(self._timeout_s)
                    )
                except psycopg.OperationalError as e:
                    raise ProjectionUnavailable(f"dead-letter store: {type(e).__name__}") from e
            return self._conn

    async def record(self, projection: str, letters: Sequence[DeadLetter]) -> None:
        """Store dead letters of ``projection`` (idempotent per seq)."""
        if not letters:
            return
        try:
            conn = await self._connection()
            async with conn.cursor() as cur:
                await cur.executemany(
                    INSERT_DEAD_LETTER, [dead_letter_params(projection, x) for x in letters]
                )
        except psycopg.OperationalError as e:
            await self.close()
            raise ProjectionUnavailable(f"dead-letter store: {type(e).__name__}") from e

    async def unresolved(
        self, *, ids: Sequence[int] = (), projections: Sequence[str] = ()
    ) -> list[StoredDeadLetter]:
        """Unresolved dead letters (all, or those ``ids``), oldest seq first."""
        query = (
            "SELECT id, projection, seq, coalesce(subject, ''), payload FROM public.failed_messages "
            "WHERE NOT resolved"
        )
        params: list[object] = []
        if ids:
            query += " AND id = ANY(%s)"
            params.append(list(ids))
        if projections:
            query += " AND projection = ANY(%s)"
            params.append(list(projections))
        try:
            conn = await self._connection()
            rows = await (
                await conn.execute(query + " ORDER BY projection, seq", params)
            ).fetchall()
        except psycopg.OperationalError as e:
            await self.close()
            raise ProjectionUnavailable(f"dead-letter store: {type(e).__name__}") from e
        return [
            StoredDeadLetter(
                int(str(r[0])),
                str(r[1]),
                int(str(r[2])),
                str(r[3]),
                bytes(cast("bytes | memoryview", r[4])),
            )
            for r in rows
        ]

    async def mark(self, letter_id: int, *, error: str | None) -> None:
        """Count a retry; resolved when ``error`` is None, else keep the new error."""
        conn = await self._connection()
        if error is None:
            await conn.execute(
                "UPDATE public.failed_messages SET retry_count = retry_count + 1, resolved = true, "
                "resolved_at = now() WHERE id = %s",
                (letter_id,),
            )
        else:
            await conn.execute(
                "UPDATE public.failed_messages SET retry_count = retry_count + 1, error = %s "
                "WHERE id = %s",
                (error[:4000], letter_id),
            )

    async def report_progress(self, name: str, seq: int, events: int) -> None:
        """Mirror a checkpoint kept elsewhere (DuckDB) into ``projection_checkpoints`` for readers (lag)."""
        try:
            conn = await self._connection()
            await conn.execute(
                "INSERT INTO public.projection_checkpoints AS c (name, seq, events_applied) VALUES (%s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET seq = EXCLUDED.seq, "
                "events_applied = c.events_applied + EXCLUDED.events_applied, updated_at = now()",
                (name, seq, events),
            )
        except psycopg.OperationalError as e:
            await self.close()
            raise ProjectionUnavailable(f"dead-letter store: {type(e).__name__}") from e

    async def close(self) -> None:
        """Close the connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
