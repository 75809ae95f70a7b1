"""One export message (a decoded JSON object) → one ``MessagePosted`` of the event contract.

An export shows each message in its latest state and has no edit history, so an edited message is
one ``MessagePosted`` whose snapshot carries ``edit_date``; no ``MessageEdited`` is emitted (see
``ingest/export/__init__.py`` for why). Dates: ``date_unixtime`` when present (exact), else the
local-time ``date`` read in the import's zone (older exports); such a snapshot says so
(``local_date``), and its id names that reading (docs/decisions/041-corrected-export-dates.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Final

import msgspec

from ingest.export.errors import UnmappableMessage
from ingest.export.media import media_of, reactions_of
from ingest.export.peers import as_int, parse_peer
from ingest.export.service_messages import action_of
from ingest.export.text import is_odd_text, text_and_entities
from schemas.events import (
    EXACT_DATE,
    GIVEN_ZONE,
    GUESSED_ZONE,
    Button,
    ChatKind,
    ForwardOrigin,
    LocalDate,
    MessagePosted,
    MessageSnapshot,
    ReplyTo,
    Sender,
)
from schemas.ids import CHANNEL_ID_OFFSET, is_channel_id, posted_event_id

# An ``edited`` stamp before Telegram existed (some versions wrote 1970 on unedited messages) is noise.
_EARLIEST_EDIT: Final = datetime(2013, 8, 1, tzinfo=UTC)
_MESSAGE_TYPES: Final = frozenset({"message", "service", ""})
# tdesktop export_data_types.cpp kMigratedMessagesIdShift (ingest/export/history.py says more).
MIGRATED_ID_SHIFT: Final = -1_000_000_000


class MessageMapper:
    """Maps the messages of one chat; build one per chat."""

    def __init__(
        self,
        *,
        chat_id: int,
        chat_kind: ChatKind,
        account: str,
        tz: tzinfo,
        observed_at: datetime,
        tz_given: bool = False,
        unshift_replies: bool = False,
    ) -> None:
        self.chat_id = chat_id
        # Pre-migration messages filed under their basic group: a reply within that history names
        # the shifted id too (ingest/export/history.py).
        self._unshift = unshift_replies
        self.odd_texts = 0  # messages whose ``text`` was a number or an object
        self.local_dates = 0  # dates read as local time in ``tz`` (no ``date_unixtime``)
        self._chat_kind = chat_kind
        self._account = account
        self._tz = tz
        # What a snapshot with a local date says about it: the zone, and whether --tz gave it.
        self._local = LocalDate(zone=str(tz), given=tz_given)
        self._observed_at = observed_at
        # Senders repeat on most messages and Sender is immutable: share one object per (id, name).
        self._senders: dict[tuple[object, object, object], Sender | None] = {}

    def message_id(self, raw: object) -> int:
        """The message id of a raw message, or raise ``UnmappableMessage``."""
        if not isinstance(raw, dict):
            raise UnmappableMessage(f"a message must be a JSON object, found {type(raw).__name__}")
        message_id = as_int(raw.get("id"))
        if message_id is None:
            raise UnmappableMessage(f"no usable message id ({raw.get('id')!r})")
        if message_id <= 0 and not (
            is_channel_id(self.chat_id) and MIGRATED_ID_SHIFT < message_id < 0
        ):
            raise UnmappableMessage("message id is not positive", message_id=message_id)
        return message_id

    def date_of(self, raw: dict[str, object]) -> datetime | None:
        """A raw message's date (UTC), or None where it has no usable one."""
        try:
            return self._date(raw.get("date_unixtime"), raw.get("date"))
        except (ValueError, TypeError, OverflowError):
            return None

    def reading(self, raw: dict[str, object]) -> tuple[int, datetime] | None:
        """The date rank (``schemas.events.date_rank``) and date a raw message would get, or None
        where it has no usable date."""
        date = self.date_of(raw)
        if date is None:
            return None
        if (as_int(raw.get("date_unixtime")) or 0) > 0 or not _without_offset(raw.get("date")):
            return EXACT_DATE, date
        return (GIVEN_ZONE if self._local.given else GUESSED_ZONE), date

    def posted(self, raw: dict[str, object], message_id: int) -> MessagePosted:
        """The ``MessagePosted`` of a raw message whose id is ``message_id``; raises ``UnmappableMessage``."""
        kind = raw.get("type", "message")
        if kind not in _MESSAGE_TYPES:
            reason = (
                "unsupported message (the export holds no content for it)"
                if kind == "unsupported"
                else f"unknown message type {kind!r}"
            )
            raise UnmappableMessage(reason, message_id=message_id)
        try:
            snapshot = self._snapshot(raw, message_id, service=kind == "service")
        except UnmappableMessage:
            raise
        except (ValueError, TypeError, AttributeError, OverflowError) as e:
            raise UnmappableMessage(f"{type(e).__name__}: {e}", message_id=message_id) from e
        return MessagePosted(
            event_id=posted_event_id(
                self.chat_id, snapshot, account=self._account, observed_at=self._observed_at
            ),
            account=self._account,
            observed_at=self._observed_at,
            source="import",
            chat_id=self.chat_id,
            message=snapshot,
        )

    def _snapshot(
        self, raw: dict[str, object], message_id: int, *, service: bool
    ) -> MessageSnapshot:
        unixtime = raw.get("date_unixtime")
        date = self._date(unixtime, raw.get("date"))
        if date is None:
            raise UnmappableMessage(f"no usable date ({raw.get('date')!r})", message_id=message_id)
        local = None
        if (as_int(unixtime) or 0) <= 0 and _without_offset(raw.get("date")):
            self.local_dates += 1
            local = self._local
        edit_date = self._edit_date(raw, date)
        text, entities = text_and_entities(raw)
        if is_odd_text(raw.get("text")) and not raw.get("text_entities"):
            self.odd_texts += 1  # the import's summary warns with the count
        if service:
            action = action_of(raw)
            if action.message_id is not None:
                action = msgspec.structs.replace(action, message_id=self._own_id(action.message_id))
            sender = self._sender(raw.get("actor_id"), raw.get("actor"))
            reply_to = (
                ReplyTo(message_id=action.message_id) if action.message_id is not None else None
            )
            return MessageSnapshot(
                message_id=message_id,
                date=date,
                local_date=local,
                edit_date=edit_date,
                sender=sender,
                text=text,
                entities=entities,
                reply_to=reply_to,
                action=action,
                reactions=reactions_of(raw),
            )
        via = raw.get("via_bot")
        author = raw.get("author")
        return MessageSnapshot(
            message_id=message_id,
            date=date,
            local_date=local,
            edit_date=edit_date,
            sender=self._sender(raw.get("from_id"), raw.get("from")),
            text=text,
            entities=entities,
            reply_to=self._reply_to(raw),
            forward=self._forward(raw),
            via_bot_name=via.removeprefix("@") if isinstance(via, str) and via else None,
            post_author=author if isinstance(author, str) and author else None,
            media=media_of(raw),
            reactions=reactions_of(raw),
            buttons=_buttons(raw.get("inline_bot_buttons")),
        )

    def _date(self, unixtime: object, local: object) -> datetime | None:
        seconds = as_int(unixtime)
        if seconds is not None and seconds > 0:
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(local, str) and local:
            value = datetime.fromisoformat(local)
            if value.tzinfo is None:
                value = value.replace(tzinfo=self._tz)
            return value.astimezone(UTC)
        return None

    def _edit_date(self, raw: dict[str, object], date: datetime) -> datetime | None:
        # Odd ``edited`` values on unedited messages (older versions) must not cost the message.
        if "edited" not in raw and "edited_unixtime" not in raw:
            return None
        try:
            edit_date = self._date(raw.get("edited_unixtime"), raw.get("edited"))
        except (ValueError, TypeError, OverflowError):
            return None
        if edit_date is None or edit_date <= date or edit_date < _EARLIEST_EDIT:
            return None
        return edit_date

    def _sender(self, raw_id: object, name: object) -> Sender | None:
        key = (type(raw_id), raw_id, name)  # the type keeps True and 1 apart
        try:
            return self._senders[key]
        except (KeyError, TypeError):  # TypeError: an unhashable value in an odd export
            pass
        sender = self._new_sender(raw_id, name)
        if len(self._senders) < 100_000:
            try:
                self._senders[key] = sender
            except TypeError:
                pass
        return sender

    def _new_sender(self, raw_id: object, name: object) -> Sender | None:
        peer = parse_peer(raw_id)
        display = name if isinstance(name, str) and name else None
        if (
            peer is not None
            and peer[1] == "user"
            and not (isinstance(raw_id, str) and raw_id.startswith("user"))
            and self.chat_id < CHANNEL_ID_OFFSET
            and peer[0] == CHANNEL_ID_OFFSET - self.chat_id
        ):
            # Old exports wrote a channel post's sender as the channel's bare id, which reads as a
            # user's: it is the channel itself (as live ingest records it).
            return Sender(id=self.chat_id, kind="channel", display_name=display)
        if peer is None:
            if self._chat_kind == "channel":
                # A channel post is sent by the channel itself (as the live converter records it).
                return Sender(id=self.chat_id, kind="channel", display_name=display)
            return None
        return Sender(id=peer[0], kind=peer[1], display_name=display)

    def _own_id(self, message_id: int | None) -> int | None:
        if self._unshift and message_id is not None and MIGRATED_ID_SHIFT < message_id < 0:
            return message_id - MIGRATED_ID_SHIFT
        return message_id

    def _reply_to(self, raw: dict[str, object]) -> ReplyTo | None:
        reply_id = as_int(raw.get("reply_to_message_id"))
        if reply_id is None:
            return None
        peer = parse_peer(raw.get("reply_to_peer_id"))
        if peer is None:
            reply_id = self._own_id(reply_id)
        return ReplyTo(message_id=reply_id, peer_id=None if peer is None else peer[0])

    def _forward(self, raw: dict[str, object]) -> ForwardOrigin | None:
        forwarded = "forwarded_from" in raw or "forwarded_from_id" in raw
        saved_from = raw.get("saved_from")
        if not forwarded and not isinstance(saved_from, str):
            return None
        # The export names the origin (tdesktop#16890); newer versions may add its id.
        name = raw.get("forwarded_from") if forwarded else saved_from
        peer = parse_peer(raw.get("forwarded_from_id"))
        return ForwardOrigin(
            peer_id=None if peer is None else peer[0], name=name if isinstance(name, str) else None
        )


def _without_offset(value: object) -> bool:
    """True for a date string without a UTC offset (a local time); its parse succeeded before."""
    return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is None


def _buttons(value: object) -> tuple[tuple[Button, ...], ...]:
    """``inline_bot_buttons``: rows of ``{type, text, data}``; ``data`` of a link is its url."""
    rows: list[tuple[Button, ...]] = []
    for row in value if isinstance(value, list) else ():
        buttons = tuple(
            Button(text=b["text"], url=_button_url(b))
            for b in (row if isinstance(row, list) else ())
            if isinstance(b, dict) and isinstance(b.get("text"), str)
        )
        if buttons:
            rows.append(buttons)
    return tuple(rows)


def _button_url(button: dict[str, object]) -> str | None:
    data = button.get("data")
    if not isinstance(data, str) or not data:
        return None
    return data if button.get("type") == "url" or data.startswith(("https://", "http://")) else None
