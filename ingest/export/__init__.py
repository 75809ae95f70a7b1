"""Telegram Desktop export import: ``result.json`` → events in the log, streamed, idempotent.

Modules: ``reader`` (streaming ijson parse), ``peers`` (export ids → Telethon marked ids), ``text``,
``media``, ``service`` and ``mapping`` (message → ``MessagePosted``), ``existing`` (what the log
already holds), ``history`` (a chat's history and what was before its migration), ``driver``
(``ExportImporter``), ``chat_facts`` (discovery, leave, links), ``summary`` (counters, skips,
warnings), ``progress`` (bar and summary text), ``errors``.

Edited messages: an export shows only the latest state of a message and no edit history, and its
``edited`` stamp is also set by the first reaction (tdesktop#30647). So an edited message becomes
one ``MessagePosted`` whose snapshot has ``edit_date``, and no ``MessageEdited``: an edit event
would claim a version change we never saw, its id (``edited_id`` digests the media's Telegram file
id, which the export lacks) would never match the edit crawled live, so versions would double.
"""

from ingest.export.driver import ExportImporter
from ingest.export.errors import ExportError, MalformedExport, UnmappableMessage
from ingest.export.summary import ImportProgress, SkippedMessage

__all__ = [
    "ExportError",
    "ExportImporter",
    "ImportProgress",
    "MalformedExport",
    "SkippedMessage",
    "UnmappableMessage",
]
