"""Console pages for admins: dead letters (retry one or all), users (roles), Telegram accounts."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Final, Literal

import msgspec
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from api.deps import ApiState, State
from api.errors import ApiError
from api.models import RoleChange
from api.routes import admin, dead_letters, users
from api.routes.dead_letters import DeadLetterId
from api.ui.overview import pages, send
from api.ui.session import AdminSession, CheckedAdmin
from schemas.errors import SchemaError

router = APIRouter(prefix="/ui", include_in_schema=False)

DEAD_LETTERS_PAGE: Final = 50
BIGINT: Final = 2**63 - 1


@router.get("/dead-letters")
async def dead_letters_page(
    request: Request,
    state: State,
    session: AdminSession,
    projection: Annotated[str | None, Query(max_length=64)] = None,
    resolved: Annotated[Literal["", "yes", "no"], Query()] = "",
    before_id: Annotated[int | None, Query(ge=1, le=BIGINT)] = None,
) -> Response:
    """Dead letters newest first, filtered by projection and resolved, with the error and the event."""
    listing = await dead_letters.list_dead_letters(
        state,
        session.principal,
        resolved={"yes": True, "no": False}.get(resolved),
        projection=projection or None,
        before_id=before_id,
        limit=DEAD_LETTERS_PAGE,
    )
    originals = await _original_events(state, [d.id for d in listing.items])
    names = await state.db.fetch_all(
        "SELECT DISTINCT projection FROM failed_messages ORDER BY projection"
    )
    query = {"projection": projection or "", "resolved": resolved}
    return pages(request).render(
        request,
        "dead_letters.html",
        session,
        {
            "items": [{"d": d, "original": originals.get(d.id, "")} for d in listing.items],
            "projections": [r["projection"] for r in names],
            "projection": projection or "",
            "resolved": resolved,
            "next_page": {**query, "before_id": listing.next_before_id}
            if listing.next_before_id
            else None,
        },
    )


async def _original_events(state: ApiState, ids: list[int]) -> dict[int, str]:
    """The stored payload of each dead letter, decoded and pretty-printed when it can be."""
    if not ids:
        return {}
    rows = await state.db.fetch_all(
        "SELECT id, payload FROM failed_messages WHERE id = ANY(%s)", (ids,)
    )
    out: dict[int, str] = {}
    for row in rows:
        data = bytes(row["payload"])
        try:
            event = state.log.codec.decode(data)
            out[row["id"]] = msgspec.json.format(msgspec.json.encode(event), indent=2).decode()
        except (
            SchemaError
        ):  # an undecodable payload is why some events are dead letters: show bytes
            out[row["id"]] = f"undecodable payload ({len(data)} bytes): {data[:300]!r}"
    return out


@router.post("/dead-letters/{dead_letter_id}/retry")
async def retry_dead_letter(
    request: Request, dead_letter_id: DeadLetterId, state: State, session: CheckedAdmin
) -> Response:
    """Retry one: ``POST /admin/dead-letters/{id}/retry``, its reply in words."""
    action = dead_letters.retry_one(dead_letter_id, state, session.principal)
    return await send(request, session, action)


@router.post("/dead-letters/retry")
async def retry_all_dead_letters(request: Request, state: State, session: CheckedAdmin) -> Response:
    """Retry all unresolved: ``POST /admin/dead-letters/retry``, its reply in words."""
    return await send(request, session, dead_letters.retry_all(state, session.principal))


@router.get("/users")
async def users_page(
    request: Request, state: State, session: AdminSession, error: str | None = None
) -> Response:
    """Users and their roles; an admin cannot change their own role."""
    listing = await users.list_users(state, session.principal)
    return pages(request).render(
        request, "users.html", session, {"users": listing.items, "error": error, "changed": None}
    )


@router.post("/users/{user_id}/role")
async def change_role(
    request: Request,
    user_id: uuid.UUID,
    state: State,
    session: CheckedAdmin,
    role: Annotated[Literal["admin", "user", "none"], Form()],
) -> Response:
    """Change a role through ``PATCH /admin/users/{id}``; a refusal is shown in words on the page."""
    error: str | None = None
    changed: Any = None
    try:
        changed = await users.change_role(user_id, RoleChange(role=role), state, session.principal)
    except ApiError as e:
        error = e.detail or e.title
    listing = await users.list_users(state, session.principal)
    return pages(request).render(
        request,
        "users.html",
        session,
        {"users": listing.items, "error": error, "changed": changed},
        status_code=200 if error is None else 409,
    )


@router.get("/accounts")
async def accounts_page(request: Request, state: State, session: AdminSession) -> Response:
    """Telegram accounts as ingest reports them (the API never reads the stored sessions)."""
    runtime = await admin.crawler_runtime(state)
    accounts = [{"name": a.account, "live": a} for a in runtime.accounts]
    return pages(request).render(
        request, "accounts.html", session, {"runtime": runtime, "accounts": accounts}
    )
