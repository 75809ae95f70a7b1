"""Named analytics queries over the DuckDB projection, as data.

Every query takes exactly the named parameters ``$chat_id`` (BIGINT, NULL = all groups), ``$since``
and ``$until`` (TIMESTAMPTZ, NULL = unbounded; ``since`` inclusive, ``until`` exclusive), so callers
(the API, ``aaltohub analytics``) run any of them generically by name.
"""

from __future__ import annotations

from typing import Final

import msgspec


class AnalyticsQuery(msgspec.Struct, frozen=True, kw_only=True):
    """One named analytics query: SQL with ``$chat_id``, ``$since``, ``$until``."""

    name: str
    description: str
    sql: str


PARAMETERS: Final = ("chat_id", "since", "until")


def _where(date_col: str = "date", chat_col: str = "chat_id") -> str:
    return (
        f"($chat_id::BIGINT IS NULL OR {chat_col} = $chat_id::BIGINT)"
        f" AND ($since::TIMESTAMPTZ IS NULL OR {date_col} >= $since::TIMESTAMPTZ)"
        f" AND ($until::TIMESTAMPTZ IS NULL OR {date_col} < $until::TIMESTAMPTZ)"
    )


_QUERIES: Final = (
    AnalyticsQuery(
        name="messages_per_day",
        description="Messages per group per day (UTC), deleted ones included.",
        sql=f"""SELECT chat_id, CAST(date AT TIME ZONE 'UTC' AS DATE) AS day, count(*) AS messages
FROM messages WHERE {_where()} GROUP BY ALL ORDER BY day, chat_id""",
    ),
    AnalyticsQuery(
        name="active_senders_per_day",
        description="Distinct senders per day (UTC) across the selected groups.",
        sql=f"""SELECT CAST(date AT TIME ZONE 'UTC' AS DATE) AS day, count(DISTINCT sender_id) AS active_senders,
       count(*) AS messages
FROM messages WHERE {_where()} AND sender_id IS NOT NULL GROUP BY ALL ORDER BY day""",
    ),
    AnalyticsQuery(
        name="active_senders_per_week",
        description="Distinct senders per ISO week (weeks start Monday, UTC) across the selected groups.",
        sql=f"""SELECT CAST(date_trunc('week', date AT TIME ZONE 'UTC') AS DATE) AS week,
       count(DISTINCT sender_id) AS active_senders, count(*) AS messages
FROM messages WHERE {_where()} AND sender_id IS NOT NULL GROUP BY ALL ORDER BY week""",
    ),
    AnalyticsQuery(
        name="top_senders",
        description="The ten most active senders of each group.",
        sql=f"""SELECT chat_id, sender_id, messages, rank FROM (
  SELECT chat_id, sender_id, count(*) AS messages,
         rank() OVER (PARTITION BY chat_id ORDER BY count(*) DESC, sender_id) AS rank
  FROM messages WHERE {_where()} AND sender_id IS NOT NULL GROUP BY chat_id, sender_id)
WHERE rank <= 10 ORDER BY chat_id, rank""",
    ),
    AnalyticsQuery(
        name="hour_of_week_heatmap",
        description="Messages by ISO weekday (1 = Monday) and hour of day, UTC.",
        sql=f"""SELECT isodow(date AT TIME ZONE 'UTC') AS weekday, hour(date AT TIME ZONE 'UTC') AS hour,
       count(*) AS messages
FROM messages WHERE {_where()} GROUP BY ALL ORDER BY weekday, hour""",
    ),
    AnalyticsQuery(
        name="edit_delete_rates",
        description="Per group: messages, how many were edited or deleted, and the rates.",
        sql=f"""SELECT chat_id, count(*) AS messages, count(*) FILTER (WHERE edit_count > 0) AS edited,
       count(*) FILTER (WHERE is_deleted) AS deleted,
       round(count(*) FILTER (WHERE edit_count > 0) / count(*), 4) AS edit_rate,
       round(count(*) FILTER (WHERE is_deleted) / count(*), 4) AS delete_rate
FROM messages WHERE {_where()} GROUP BY chat_id ORDER BY messages DESC""",
    ),
    AnalyticsQuery(
        name="reply_latency",
        description="Per group: time from a message to its first reply (seconds): count, p50, p90, mean.",
        sql=f"""WITH firsts AS (
  SELECT p.chat_id, p.message_id, epoch(min(r.date) - p.date) AS latency_s
  FROM messages p JOIN messages r ON r.chat_id = p.chat_id AND r.reply_to_message_id = p.message_id
  WHERE {_where("p.date", "p.chat_id")} AND r.date >= p.date
  GROUP BY p.chat_id, p.message_id, p.date)
SELECT chat_id, count(*) AS replied_messages, quantile_cont(latency_s, 0.5) AS p50_s,
       quantile_cont(latency_s, 0.9) AS p90_s, avg(latency_s) AS mean_s
FROM firsts GROUP BY chat_id ORDER BY chat_id""",
    ),
    AnalyticsQuery(
        name="media_type_mix",
        description="Messages by media type ('text' when there is none) and their share.",
        sql=f"""SELECT coalesce(media_type, 'text') AS media_type, count(*) AS messages,
       round(count(*) / sum(count(*)) OVER (), 4) AS share
FROM messages WHERE {_where()} GROUP BY ALL ORDER BY messages DESC""",
    ),
    AnalyticsQuery(
        name="ingest_lag",
        description="Seconds from a message's date to its observation, p50/p95/p99 by source (posts only).",
        sql=f"""SELECT source, count(*) AS events, quantile_cont(lag_s, 0.5) AS p50_s,
       quantile_cont(lag_s, 0.95) AS p95_s, quantile_cont(lag_s, 0.99) AS p99_s
FROM (SELECT source, chat_id, date, epoch(observed_at - date) AS lag_s FROM events
      WHERE kind = 'message.posted')
WHERE {_where()} GROUP BY source ORDER BY source""",
    ),
    AnalyticsQuery(
        name="gapfill_only",
        description="Per group: messages first seen by gap-fill (what the live listener missed) and their share.",
        sql=f"""SELECT chat_id, count(*) AS messages, count(*) FILTER (WHERE source = 'gapfill') AS gapfill_only,
       round(count(*) FILTER (WHERE source = 'gapfill') / count(*), 4) AS share
FROM messages WHERE {_where()} GROUP BY chat_id ORDER BY gapfill_only DESC, chat_id""",
    ),
)

ANALYTICS_QUERIES: Final[dict[str, AnalyticsQuery]] = {q.name: q for q in _QUERIES}
