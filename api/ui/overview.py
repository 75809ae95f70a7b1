"""Console pages: dashboard (with its live-refreshed status fragment) and groups with crawl controls."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from api.deps import ChatId, State
from api.errors import ApiError
from api.models import CommandAck, CrawlRequest
from api.routes import admin, crawler
from api.routes.groups import GROUP_SQL, crawler_state
from api.ui.render import Pages
from api.ui.session import AdminSession, CheckedAdmin, ConsoleSession, Session

router = APIRouter(prefix="/ui", include_in_schema=False)

GROUPS_PAGE: Final = 100
_GROUPS_SQL: Final = (
    GROUP_SQL
    + """WHERE (%(q)s::text IS NULL OR g.title ILIKE %(q)s OR g.username ILIKE %(q)s
       OR g.chat_id::text = %(exact)s)
  AND (coalesce(g.title, ''), g.chat_id) > (%(after_title)s, %(after_id)s)
ORDER BY coalesce(g.title, ''), g.chat_id LIMIT %(limit)s"""
)


def pages(request: Request) -> Pages:
    """The app's page renderer."""
    found: Pages = request.app.state.console_pages
    return found


def is_htmx(request: Request) -> bool:
    """True when htmx sent the request (answer with a fragment, not a page)."""
    return bool(request.headers.get("hx-request"))


def command_result(
    request: Request, session: ConsoleSession, ack: CommandAck | None, *, error: str | None = None
) -> Response:
    """A command's outcome in words: a status fragment for htmx, else a page linking back."""
    ok = ack is not None and ack.ok
    text = error or (ack.message if ack and ack.message else ("Done." if ok else "Refused."))
    context = {"ok": ok, "text": text, "back": request.headers.get("referer") or "/ui/groups"}
    template = "fragments/result.html" if is_htmx(request) else "result.html"
    return pages(request).render(request, template, session, context)


async def send(request: Request, session: ConsoleSession, action: Any) -> Response:
    """Await an admin endpoint's command and show its outcome (failures in words)."""
    try:
        ack: CommandAck = await action
    except ApiError as e:
        return command_result(request, session, None, error=e.detail or e.title)
    return command_result(request, session, ack)


@router.get("/")
async def dashboard(request: Request, session: Session) -> Response:
    """The admin dashboard (a plain user goes to the groups)."""
    if not session.is_admin:
        return Response(status_code=303, headers={"Location": "/ui/groups"})
    return pages(request).render(request, "dashboard.html", session)


@router.get("/fragments/status")
async def status_fragment(request: Request, state: State, session: AdminSession) -> Response:
    """The dashboard's status panel; refreshed on live events and every 30 s."""
    status = await admin.status(state, session.principal)
    errors = await admin.recent_errors(state, session.principal, limit=10)
    return pages(request).render(
        request,
        "fragments/status.html",
        session,
        {"status": status, "crawler": status.crawler, "errors": errors.items},
    )


@router.get("/groups")
async def groups(
    request: Request,
    state: State,
    session: Session,
    q: Annotated[str | None, Query(max_length=200)] = None,
    after_title: Annotated[str | None, Query(max_length=300)] = None,
    after_id: Annotated[int | None, Query(ge=-(2**63), le=2**63 - 1)] = None,
) -> Response:
    """Groups by title, a keyset page at a time, with status, backfill progress and crawl buttons."""
    search = q.strip() if q and q.strip() else None
    rows = await state.db.fetch_all(
        _GROUPS_SQL,
        {
            "q": f"%{search.replace(chr(0), '')}%" if search else None,
            "exact": search,
            "after_title": after_title or "",
            "after_id": after_id if after_id is not None else -(2**63),
            "limit": GROUPS_PAGE + 1,
        },
    )
    more = len(rows) > GROUPS_PAGE
    shown = [_group_view(r) for r in rows[:GROUPS_PAGE]]
    next_page = None
    if more and shown:
        last = shown[-1]
        next_page = {"after_title": last["title"] or "", "after_id": last["chat_id"]}
        if search:
            next_page["q"] = search
    counts = await state.db.fetch_one("SELECT count(*) AS n FROM telegram_groups")
    return pages(request).render(
        request,
        "groups.html",
        session,
        {
            "groups": shown,
            "q": search or "",
            "next_page": next_page,
            "first_page": after_id is not None,
            "total": counts["n"] if counts else 0,
        },
    )


def _group_view(row: dict[str, Any]) -> dict[str, Any]:
    state = crawler_state(row)
    status = state.status if state else ("active" if row["is_active"] else "left")
    return {
        "chat_id": row["chat_id"],
        "title": row["title"],
        "username": row["username"],
        "kind": row["kind"],
        "account": row["account"] or (state.account if state else None),
        "status": status,
        "progress": state.backfill_progress if state else None,
        "fetched": state.backfill_fetched if state else 0,
        "total": state.backfill_total if state else None,
        "last_message_at": (state.last_message_at if state else None) or row["last_activity_at"],
        "message_count": row["message_count"],
        "last_error": state.last_error if state else None,
    }


@router.post("/groups/{chat_id}/crawl")
async def crawl(
    request: Request,
    chat_id: ChatId,
    state: State,
    session: CheckedAdmin,
    mode: Annotated[Literal["backfill", "gapfill"], Form()] = "gapfill",
) -> Response:
    """Crawl now: ``POST /admin/groups/{chat_id}/crawl`` for this group, its reply in words."""
    action = crawler.trigger_crawl(chat_id, CrawlRequest(mode=mode), state, session.principal)
    return await send(request, session, action)


@router.post("/crawler/restart")
async def restart(request: Request, state: State, session: CheckedAdmin) -> Response:
    """Restart crawler: ``POST /admin/crawler/restart``, its reply in words."""
    return await send(request, session, crawler.restart(state, session.principal))
