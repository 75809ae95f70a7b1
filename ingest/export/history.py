"""Where an export's messages go: the chat's own history and, for a supergroup that was a basic
group, the history from before the migration (docs/decisions/031-pre-migration-history.md).

Telegram Desktop exports a migrated supergroup as one chat: the basic group's messages first, their
ids shifted by ``MIGRATED_ID_SHIFT`` (negative), then the supergroup's own. The export never says
the basic group's id (``migrate_from_group`` carries only its title), so ``--migrated-from`` tells
it; with it, those messages are filed under the basic group with their own ids, numbered per
account as Telegram numbers them, and dedupe against the same messages from live or backfill.
Without it they land under the supergroup with the export's ids.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime

from ingest.export.existing import KnownIds
from ingest.export.mapping import MIGRATED_ID_SHIFT, MessageMapper

# MIGRATED_ID_SHIFT (tdesktop's kMigratedMessagesIdShift) is added to the id, and to a reply's id
# within that history, of every message from before the migration.


def is_pre_migration(export_id: int) -> bool:
    """True for an export id in the range Desktop shifts a migrated basic group's messages to."""
    return MIGRATED_ID_SHIFT < export_id < 0


def original_id(export_id: int) -> int:
    """The basic group's own id of a shifted export id."""
    return export_id - MIGRATED_ID_SHIFT


class Seen:
    """Message ids imported into one history in this run (duplicates inside one file); ~8 bytes each."""

    def __init__(self) -> None:
        self._ordered: array[int] = array("q")
        self._others: set[int] = set()

    def add(self, message_id: int) -> bool:
        """Record ``message_id``; False if it was recorded before."""
        ordered = self._ordered
        if not ordered or message_id > ordered[-1]:
            ordered.append(message_id)
            return True
        i = bisect_left(ordered, message_id)
        if (i < len(ordered) and ordered[i] == message_id) or message_id in self._others:
            return False
        self._others.add(message_id)
        return True


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b > a) else a


@dataclass
class History:
    """One chat's history as the import fills it: its mapper, what the log holds, what this run
    appended, and its newest message date (the time the export shows the chat as of)."""

    mapper: MessageMapper
    known: KnownIds
    seen: Seen = field(default_factory=Seen)
    newest: datetime | None = None
    appended: int = 0

    def saw(self, date: datetime | None) -> None:
        """Count ``date`` towards the newest message date."""
        self.newest = _later(self.newest, date)
