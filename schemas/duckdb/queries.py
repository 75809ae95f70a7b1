"""Named analytics queries over the DuckDB projection (placeholder until the projector's set lands).

Each query takes the named parameters ``$chat_id`` (NULL = all chats), ``$since`` and ``$until``
(timestamps, NULL = unbounded).
"""

from __future__ import annotations

from typing import Final

import msgspec


class AnalyticsQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A named, parameterised read-only query."""

    name: str
    description: str
    sql: str


_WHERE: Final = """
    NOT is_deleted
    AND ($chat_id::BIGINT IS NULL OR chat_id = $chat_id::BIGINT)
    AND ($since::TIMESTAMPTZ IS NULL OR date >= $since::TIMESTAMPTZ)
    AND ($until::TIMESTAMPTZ IS NULL OR date < $until::TIMESTAMPTZ)
"""

ANALYTICS_QUERIES: Final[dict[str, AnalyticsQuery]] = {
    q.name: q
    for q in (
        AnalyticsQuery(
            name="messages_per_day",
            description="Messages per chat and day.",
            sql=f"SELECT chat_id, CAST(date AS DATE) AS day, count(*) AS messages FROM messages WHERE {_WHERE} "
            "GROUP BY ALL ORDER BY day, chat_id",
        ),
        AnalyticsQuery(
            name="top_senders",
            description="The 20 most active senders.",
            sql=f"SELECT sender_id, count(*) AS messages FROM messages WHERE {_WHERE} "
            "GROUP BY sender_id ORDER BY messages DESC, sender_id LIMIT 20",
        ),
    )
}
