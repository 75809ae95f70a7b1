"""User management: list users, change a role (never one's own)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from api.deps import Admin, State, User
from api.errors import Conflict, Forbidden, NotFound, problem_responses
from api.models import Me, RoleChange, UserList
from api.models import User as UserModel

router = APIRouter(tags=["users"], responses=problem_responses(401, 422, 503))


@router.get("/me", response_model=Me, summary="The caller")
async def me(user: User) -> Me:
    """Who the credential belongs to and their role."""
    return Me(user_id=user.user_id, role=user.role)


@router.get(
    "/admin/users", response_model=UserList, summary="List users", responses=problem_responses(403)
)
async def list_users(state: State, _admin: Admin) -> UserList:
    """All users with their roles."""
    rows = await state.db.fetch_all(
        "SELECT id, email, role, created_at, updated_at FROM users ORDER BY created_at, id"
    )
    return UserList(items=[UserModel(**r) for r in rows])


@router.patch(
    "/admin/users/{user_id}",
    response_model=UserModel,
    summary="Change a user's role",
    responses=problem_responses(400, 403, 404, 409),
)
async def change_role(
    user_id: uuid.UUID, body: RoleChange, state: State, admin: Admin
) -> UserModel:
    """Set a user's role; an admin can never change their own, and the last admin stays admin."""
    if admin.user_id == user_id:
        raise Forbidden("you cannot change your own role")
    # The CTE locks every admin row, so two concurrent demotions cannot both see a second admin.
    row = await state.db.fetch_one(
        "WITH admins AS (SELECT id FROM users WHERE role = 'admin' FOR UPDATE)"
        " UPDATE users SET role = %(role)s, updated_at = now() WHERE id = %(id)s"
        " AND (%(role)s = 'admin' OR role <> 'admin' OR (SELECT count(*) FROM admins) > 1)"
        " RETURNING id, email, role, created_at, updated_at",
        {"role": body.role, "id": user_id},
    )
    if row is None:
        if await state.db.fetch_one("SELECT 1 AS found FROM users WHERE id = %s", (user_id,)):
            raise Conflict("the last admin cannot become a user; make someone else admin first")
        raise NotFound("no such user")
    state.auth.forget(user_id)
    return UserModel(**row)
