"""The one way ingest states a failure in the log: an ``IngestFailed`` with its own occurrence id.

Every producer (a Telegram worker, the update handlers, media downloads, the append path, the
ingest service's source supervisor) builds the event here, so each carries a kind for filtering
(``/admin/errors``, ``crawler_status.last_error_kind``) and a bounded, secret-free detail.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from schemas import ids
from schemas.events import IngestFailed, Source

DETAIL_MAX_CHARS: Final = 500  # an error's detail is a hint, not a dump

# The kinds in use: backfill, gap-fill, catch-up, discovery, media, live, session (a Telegram
# account), source (a crashed ingest source), log (the append path: spool or log refused events).


def failure_event(
    *,
    account: str,
    kind: str,
    error: str,
    observed_at: datetime,
    source: Source = "live",
    detail: str | None = None,
    chat_id: int | None = None,
) -> IngestFailed:
    """An ``IngestFailed`` of ``kind``; ``detail`` is cut to ``DETAIL_MAX_CHARS`` (empty: none)."""
    return IngestFailed(
        event_id=ids.occurrence_id("error"),
        account=account,
        observed_at=observed_at,
        source=source,
        chat_id=chat_id,
        error=error,
        detail=detail[:DETAIL_MAX_CHARS] or None if detail is not None else None,
        error_kind=kind,
    )
