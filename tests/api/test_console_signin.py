"""Console sign-in with email and password through Supabase Auth (the ``supabase`` library).

Supabase cannot be reached here, so a small GoTrue stand-in on loopback answers
``POST /auth/v1/token?grant_type=password`` the way GoTrue documents it (a session with an access
token signed by the project's JWT secret, or 400 ``invalid_grant``). Everything on our side is the
real console: the sign-in form, the ``supabase`` client, JWT verification and the role lookup.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aaltohub.embedded.process import free_port
from api.config import ApiConfig
from eventlog import EventLog
from tests.api.conftest import RunningApi, make_jwt, start_api, stop_api
from tests.api.rows import insert_user
from tests.helpers import wait_until

EMAIL = "operator@example.org"
PASSWORD = "correct horse battery staple"
ANON_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJl"


def gotrue(user_id: uuid.UUID) -> Starlette:
    """GoTrue's password grant for one user."""

    async def token(request: Request) -> JSONResponse:
        body = await request.json()
        if request.query_params.get("grant_type") != "password" or (
            body.get("email"),
            body.get("password"),
        ) != (EMAIL, PASSWORD):
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "Invalid login credentials"},
                status_code=400,
            )
        user = {
            "id": str(user_id),
            "aud": "authenticated",
            "role": "authenticated",
            "email": EMAIL,
            "app_metadata": {"provider": "email"},
            "user_metadata": {},
            "created_at": "2026-11-01T12:00:00Z",
        }
        return JSONResponse(
            {
                "access_token": make_jwt(user_id),
                "token_type": "bearer",
                "expires_in": 300,
                "expires_at": 4_000_000_000,
                "refresh_token": "refresh-token",
                "user": user,
            }
        )

    return Starlette(routes=[Route("/auth/v1/token", token, methods=["POST"])])


@pytest.fixture
def operator_id(api_config: ApiConfig) -> uuid.UUID:
    """An admin user in the ``users`` table."""
    return insert_user(api_config.database_url.get_secret_value(), role="admin")


@pytest.fixture
async def auth_server(operator_id: uuid.UUID) -> AsyncIterator[str]:
    """The GoTrue stand-in on a free loopback port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(gotrue(operator_id), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started, timeout=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)


@pytest.fixture
async def console(
    api_config: ApiConfig, event_log: EventLog, auth_server: str
) -> AsyncIterator[RunningApi]:
    """An API whose console signs in through the stand-in."""
    config = replace(api_config, supabase_url=auth_server, supabase_anon_key=SecretStr(ANON_KEY))
    server, task, url = await start_api(config)
    try:
        yield RunningApi(
            url=url,
            config=config,
            database_url=config.database_url.get_secret_value(),
            event_log=event_log,
        )
    finally:
        await stop_api(server, task)


async def submit(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    """Fetch the sign-in form and post ``fields`` with its CSRF token."""
    form = await client.get("/ui/login")
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
    assert match is not None
    return await client.post("/ui/login", data={"csrf": match.group(1), **fields})


async def test_email_and_password_sign_in_keeps_the_users_jwt_in_the_cookie(
    console: RunningApi, operator_id: uuid.UUID
) -> None:
    async with httpx.AsyncClient(base_url=console.url) as client:
        response = await submit(client, email=EMAIL, password=PASSWORD)
        users = await client.get("/ui/users")
    assert response.status_code == 303
    session = client.cookies["aaltohub_session"]
    assert session.count(".") == 2  # the user's access token, not the password
    assert PASSWORD not in response.headers.get("set-cookie", "")
    assert users.status_code == 200
    assert re.search(rf'id="u-{operator_id}">.*\(you\)', users.text)


async def test_a_wrong_password_is_refused_in_words_and_keeps_the_email(
    console: RunningApi,
) -> None:
    async with httpx.AsyncClient(base_url=console.url) as client:
        response = await submit(client, email=EMAIL, password="wrong")
    assert response.status_code == 401
    assert "Supabase did not accept that email and password." in response.text
    assert f'value="{EMAIL}"' in response.text
    assert "aaltohub_session" not in client.cookies
