"""What an import reports: its counters (``ImportProgress``), the messages it skipped and why, and
the warnings it says once with counts (what landed differently from what the file says)."""

from __future__ import annotations

from collections import Counter

import msgspec


class SkippedMessage(msgspec.Struct, frozen=True):
    """A message that was not imported, and why."""

    chat_id: int | None
    message_id: object
    reason: str


class ImportProgress(msgspec.Struct, kw_only=True):
    """Counters of a running import (also its final summary)."""

    chats: int = 0
    messages: int = 0
    imported: int = 0
    spooled: int = 0  # accepted but still in the import spool when the import ended (not imported)
    already_present: int = 0
    # Messages an earlier import stored with other local dates: stored again with this import's
    # dates, which the projections show (a re-import with the right --tz corrects them) ...
    redated: int = 0
    # ... or kept, where the earlier dates rank higher (read in a --tz zone, this import guesses).
    dates_kept: int = 0
    pre_migration: int = 0  # messages from before a basic group became the supergroup
    skipped: int = 0
    chats_skipped: int = 0
    failed: int = 0  # messages that could not be stored (too large for the log): exit non-zero
    bytes_read: int = 0
    total_bytes: int = 0
    elapsed_s: float = 0.0
    skip_reasons: dict[str, int] = msgspec.field(default_factory=dict)
    skipped_examples: list[SkippedMessage] = msgspec.field(default_factory=list)
    # Said once per import, with counts: what landed differently from what the file says.
    warnings: list[str] = msgspec.field(default_factory=list)

    @property
    def messages_per_s(self) -> float:
        """Messages read per second so far."""
        return self.messages / self.elapsed_s if self.elapsed_s > 0 else 0.0


def import_warnings(
    progress: ImportProgress,
    *,
    local_dates: int,
    tz_reason: str,
    migrated_from: int | None,
    chat_ids: Counter[int],
    odd_texts: int,
) -> list[str]:
    """The warnings of an import's summary, each once with its count."""
    out: list[str] = []
    if local_dates:
        out.append(
            f"{local_dates} messages have no date_unixtime; their local dates were read "
            f"as {tz_reason}"
        )
    if progress.redated:
        out.append(
            f"{progress.redated} messages an earlier import stored with other local dates were "
            "stored again with these dates, which replace the earlier ones"
        )
    if progress.dates_kept:
        out.append(
            f"{progress.dates_kept} messages keep the dates an earlier import read in a zone "
            "given with --tz; pass --tz to read them again"
        )
    pre = progress.pre_migration
    if pre and migrated_from is None:
        out.append(
            f"{pre} messages from before the group became a supergroup were stored under the "
            "supergroup with the export's shifted ids (-1,000,000,000 + id); pass "
            "--migrated-from <basic group id> to file them under the basic group, where they "
            "dedupe against live and backfill"
        )
    elif pre:
        out.append(f"{pre} messages from before the migration: under {migrated_from}")
    repeated = {c: n for c, n in chat_ids.items() if n > 1}
    for chat_id, n in sorted(repeated.items()):
        out.append(
            f"chat {chat_id} appears {n} times in the export; its messages were imported "
            "as one chat (a message id seen twice is skipped as a duplicate)"
        )
    if odd_texts:
        out.append(
            f"{odd_texts} messages have a `text` that is neither a string nor a list "
            "(a number or an object); their text was taken from it as written"
        )
    return out
