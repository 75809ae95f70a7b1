"""Console pages: a group's messages, search, one message with its edit history, event history."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import re
from collections.abc import AsyncGenerator
from typing import Annotated, Any, Final, cast
from urllib.parse import quote

import msgspec
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from api.deps import ApiState, ChatId, State
from api.errors import BadRequest, NotFound, ServiceUnavailable
from api.routes import messages, search
from api.routes.groups import GROUP_SQL, to_group
from api.routes.media import media_bucket, media_file
from api.routes.messages import MESSAGE_KEY_SQL, AccountQuery, message_key
from api.ui.overview import pages
from api.ui.session import Session
from eventlog import BadRecord, EventLogError, Record
from schemas.subjects import chat_subjects

router = APIRouter(prefix="/ui", include_in_schema=False)

BIGINT: Final = 2**63 - 1
MESSAGES_PAGE: Final = 50
EVENTS_PAGE: Final = 100
MESSAGE_EVENTS_SCAN: Final = 50_000  # records read at most for one message's history
LOG_TIMEOUT_S: Final = 10.0
_WORDS: Final = re.compile(r"(\s+)")
# Keyset on (message_id, id_scope): in a basic group two accounts can hold the same id.
_MESSAGES_SQL: Final = """SELECT message_id, id_scope, account, date, sender_name, sender_username,
    sender_id, text, is_deleted, deleted_at, edit_count, reply_to_message_id, forward, media_type,
    is_service, action_type
FROM messages WHERE chat_id = %(chat)s AND (message_id, id_scope) < (%(before)s, %(before_scope)s)
ORDER BY message_id DESC, id_scope DESC LIMIT %(limit)s"""


@router.get("/groups/{chat_id}")
async def group_messages(
    request: Request,
    chat_id: ChatId,
    state: State,
    session: Session,
    before: Annotated[int | None, Query(ge=0, le=BIGINT)] = None,
    before_scope: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """A group's messages newest first (deleted ones as tombstones), a keyset page at a time."""
    row = await state.db.fetch_one(GROUP_SQL + " WHERE g.chat_id = %s", (chat_id,))
    if row is None:
        raise NotFound("There is no group with this id.")
    rows = await state.db.fetch_all(
        _MESSAGES_SQL,
        {
            "chat": chat_id,
            "before": before if before is not None else BIGINT,
            "before_scope": before_scope if before is not None else "",
            "limit": MESSAGES_PAGE + 1,
        },
    )
    more = len(rows) > MESSAGES_PAGE
    shown = rows[:MESSAGES_PAGE]
    return pages(request).render(
        request,
        "group.html",
        session,
        {
            "group": to_group(row),
            "messages": shown,
            "next_before": shown[-1]["message_id"] if more and shown else None,
            "next_scope": shown[-1]["id_scope"] if more and shown else "",
            "first_page": before is not None,
        },
    )


@router.get("/search")
async def search_page(
    request: Request,
    state: State,
    session: Session,
    q: Annotated[str, Query(max_length=500)] = "",
    chat: Annotated[str, Query(alias="chat_id", max_length=24)] = "",
) -> Response:
    """Full-text search across groups (or one), deleted messages shown as tombstones."""
    hits: list[Any] = []
    try:
        chat_id = optional_id(chat)
    except BadRequest as e:  # keep what was typed, say what is wrong
        return pages(request).render(
            request,
            "search.html",
            session,
            {"q": q, "chat_id": chat, "hits": [], "error": e.detail},
            status_code=400,
        )
    if q.strip():
        found = await search.search(
            state, session.principal, q=q.strip(), chat_id=chat_id, limit=50, include_deleted=True
        )
        hits = found.items
    return pages(request).render(
        request, "search.html", session, {"q": q, "chat_id": chat, "hits": hits, "error": None}
    )


def optional_id(value: str) -> int | None:
    """A form's optional id field: empty means none; anything else must be a 64-bit integer."""
    text = value.strip()
    if not text:
        return None
    try:
        number = int(text)
    except ValueError:
        number = None
    if number is None or not -(2**63) <= number <= BIGINT:
        raise BadRequest(f"“{text}” is not a group id (a whole number such as -1001234567890).")
    return number


@router.get("/groups/{chat_id}/messages/{message_id}")
async def message_page(
    request: Request,
    chat_id: ChatId,
    message_id: Annotated[int, Path(ge=0, le=BIGINT)],
    state: State,
    session: Session,
    account: AccountQuery = None,
) -> Response:
    """One message (of ``account`` where ids are per account): text, reply and forward links,
    tombstone, and each edit as a diff."""
    message = await messages.get_message(chat_id, message_id, state, session.principal, account)
    stored = await state.db.fetch_one(
        f"SELECT media_path, id_scope FROM messages WHERE {MESSAGE_KEY_SQL}",
        message_key(chat_id, message_id, account),
    )
    versions = message.versions
    diffs = [
        {
            "version": v,
            "segments": word_diff(versions[i - 1].text if i else "", v.text),
            "first": i == 0,
        }
        for i, v in enumerate(versions)
    ]
    media_url = None
    if stored and stored["media_path"] and (state.config.media_dir or media_bucket(state)):
        media_url = f"/ui/media/{chat_id}/{message_id}" + _scope_query(stored["id_scope"])
    return pages(request).render(
        request, "message.html", session, {"m": message, "diffs": diffs, "media_url": media_url}
    )


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """``new`` against ``old`` word by word: ``(op, text)`` with op ``same``, ``del`` or ``ins``."""
    a, b = _WORDS.split(old), _WORDS.split(new)
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(("same", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("del", "".join(a[i1:i2])))
        if j2 > j1:
            out.append(("ins", "".join(b[j1:j2])))
    return out


@router.get("/groups/{chat_id}/events")
async def group_events(
    request: Request,
    chat_id: ChatId,
    state: State,
    session: Session,
    from_seq: Annotated[int, Query(ge=1, le=BIGINT)] = 1,
) -> Response:
    """Every event about a group straight from the log, oldest first, a page at a time."""
    records = await _read_events(state, chat_id, from_seq=from_seq, to_seq=None, keep=None)
    return pages(request).render(
        request,
        "events.html",
        session,
        {
            "chat_id": chat_id,
            "message_id": None,
            "events": records[:EVENTS_PAGE],
            "next_from": records[EVENTS_PAGE - 1]["seq"] + 1
            if len(records) > EVENTS_PAGE
            else None,
        },
    )


@router.get("/groups/{chat_id}/messages/{message_id}/events")
async def message_events(
    request: Request,
    chat_id: ChatId,
    message_id: Annotated[int, Path(ge=0, le=BIGINT)],
    state: State,
    session: Session,
    account: AccountQuery = None,
) -> Response:
    """Every event of one message (of ``account`` where ids are per account) straight from the
    log (posted, edits, reactions, delete, media)."""
    row = await state.db.fetch_one(
        f"SELECT first_seq, last_seq, id_scope FROM messages WHERE {MESSAGE_KEY_SQL}",
        message_key(chat_id, message_id, account),
    )
    if row is None:
        raise NotFound("There is no such message.")
    records = await _read_events(
        state,
        chat_id,
        from_seq=max(1, row["first_seq"] or 1),
        to_seq=row["last_seq"],
        keep=(message_id, row["id_scope"]),
    )
    return pages(request).render(
        request,
        "events.html",
        session,
        {"chat_id": chat_id, "message_id": message_id, "events": records, "next_from": None},
    )


async def _read_events(
    state: ApiState,
    chat_id: int,
    *,
    from_seq: int,
    to_seq: int | None,
    keep: tuple[int, str] | None,
) -> list[dict[str, Any]]:
    """Up to a page + 1 records about ``chat_id`` (only those of the message ``keep`` when given:
    its id and id scope, '' in channels, the observing account elsewhere)."""
    out: list[dict[str, Any]] = []
    scanned = 0
    try:
        async with asyncio.timeout(LOG_TIMEOUT_S):
            reader = cast(
                AsyncGenerator[list[Record | BadRecord]],
                state.log.read(
                    from_seq, to_seq=to_seq, subjects=chat_subjects(chat_id), batch_size=500
                ),
            )
            async with contextlib.aclosing(reader):
                async for batch in reader:
                    for record in batch:
                        scanned += 1
                        view = _event_view(record)
                        if keep is None or _is_of(view, *keep):
                            out.append(view)
                    if (keep is None and len(out) > EVENTS_PAGE) or scanned >= MESSAGE_EVENTS_SCAN:
                        break
    except (EventLogError, TimeoutError) as e:
        raise ServiceUnavailable("The event log did not answer in time.") from e
    return out


def _is_of(view: dict[str, Any], message_id: int, id_scope: str) -> bool:
    """True when the event ``view`` is about the message (``message_id``, ``id_scope``)."""
    return view["message_id"] == message_id and id_scope in ("", view["account"])


def _scope_query(id_scope: str) -> str:
    """The ``?account=`` of a link to a message whose id is per account ('' in channels)."""
    return f"?account={quote(id_scope, safe='')}" if id_scope else ""


def _event_view(record: Record | BadRecord) -> dict[str, Any]:
    if isinstance(record, BadRecord):  # stored, but not decodable
        return {
            "seq": record.seq,
            "kind": "undecodable",
            "at": None,
            "source": "—",
            "message_id": None,
            "account": None,
            "body": record.error,
        }
    event = record.event
    snapshot = getattr(event, "message", None)
    message_id = getattr(snapshot, "message_id", None) or getattr(event, "message_id", None)
    body = msgspec.json.format(msgspec.json.encode(event), indent=2).decode()
    return {
        "seq": record.seq,
        "kind": type(event).__struct_config__.tag,
        "at": event.observed_at,
        "source": event.source,
        "message_id": message_id,
        "account": event.account,
        "body": body,
    }


@router.get("/media/{chat_id}/{message_id}")
async def media(
    chat_id: ChatId,
    message_id: Annotated[int, Path(ge=0, le=BIGINT)],
    state: State,
    session: Session,
    account: AccountQuery = None,
) -> Response:
    """A message's stored media for the console (the session cookie authenticates)."""
    del session
    return await media_file(state, chat_id, message_id, account)
