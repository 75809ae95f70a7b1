"""The chat facts an import appends after a chat's messages: its discovery (as of its newest
message), for a left chat its leave, a forum flag an earlier import missed, and for a migrated
supergroup its basic group's link to it; none the log already holds."""

from __future__ import annotations

from datetime import UTC, datetime

from ingest.export.history import History
from ingest.export.reader import ChatHeader
from schemas.events import ChatDiscovered, ChatInfo, ChatKind, ChatLeft, ChatUpdated, Event
from schemas.ids import chat_updated_id, discovered_id, left_id


def chat_facts(
    account: str,
    header: ChatHeader,
    kind: ChatKind,
    main: History,
    before: History | None,
    basic_title: list[tuple[datetime, str]],
    *,
    forum: bool,
) -> list[Event]:
    """The chat's discovery (as of its newest message), for a left chat its leave, and for a
    migrated supergroup its basic group's link to it, unless the log holds them."""
    chat_id = main.mapper.chat_id
    observed_at = datetime.now(UTC)
    info = ChatInfo(
        chat_id=chat_id, kind=kind, title=header.name or None, forum=forum, as_of=main.newest
    )
    facts: list[Event] = [
        ChatDiscovered(
            event_id=discovered_id(account, chat_id),
            chat_id=chat_id,
            chat=info,
            account=account,
            observed_at=observed_at,
            source="import",
        )
    ]
    if header.section == "left_chats":
        # The account had left this chat when it exported: store it left, not active.
        facts.append(
            ChatLeft(
                event_id=left_id(account, chat_id),
                chat_id=chat_id,
                reason="listed under left_chats in the export",
                account=account,
                observed_at=observed_at,
                source="import",
            )
        )
    known = main.known.chat_events
    if forum and not main.known.forum and facts[0].event_id in known:
        # The chat was imported before without its forum flag: say it now, as of the export.
        facts.append(
            ChatUpdated(
                event_id=chat_updated_id(info, observed_at=observed_at),
                chat_id=chat_id,
                chat=info,
                account=account,
                observed_at=observed_at,
                source="import",
            )
        )
    if before is not None and (before.newest is not None or basic_title):
        # The basic group as it was when it became this supergroup.
        at, title = basic_title[-1] if basic_title else (before.newest, None)
        basic = ChatInfo(
            chat_id=before.mapper.chat_id,
            kind="group",
            title=title,
            as_of=at,
            migrated_to=chat_id,
        )
        facts.append(
            ChatUpdated(
                event_id=chat_updated_id(basic, observed_at=observed_at),
                chat_id=basic.chat_id,
                chat=basic,
                account=account,
                observed_at=observed_at,
                source="import",
            )
        )
        known = known | before.known.chat_events
    return [f for f in facts if f.event_id not in known]
