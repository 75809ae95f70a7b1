"""Console sign-in with email and password through Supabase Auth (the ``supabase`` library).

Supabase cannot be reached here, so a small GoTrue stand-in on loopback answers
``POST /auth/v1/token?grant_type=password`` the way GoTrue documents it (a session with an access
token signed by the project's JWT secret, or 400 ``invalid_grant``). Everything on our side is the
real console: the sign-in form, the ``supabase`` client, JWT verification and the role lookup.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aaltohub.embedded.process import free_port
from aaltohub.service_api import SignalFreeServer
from api.config import ApiConfig
from eventlog import EventLog
from tests.api.conftest import RunningApi, make_jwt, start_api, stop_api
from tests.api.rows import insert_user
from tests.helpers import wait_until

EMAIL = "operator@example.org"
PASSWORD = "correct horse battery staple"
ANON_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJl"


class GoTrue:
    """GoTrue's password and refresh-token grants for one user. Access tokens live
    ``lifetime_s``; refresh tokens rotate (each works once), as Supabase's do."""

    def __init__(self, user_id: uuid.UUID) -> None:
        self.user_id = user_id
        self.lifetime_s = 3600.0
        self.live_refresh_tokens: set[str] = set()
        self.issued = 0
        self.refreshes = 0
        self.sign_outs = 0

    def app(self) -> Starlette:
        """The stand-in's HTTP app."""
        return Starlette(
            routes=[
                Route("/auth/v1/token", self.token, methods=["POST"]),
                Route("/auth/v1/logout", self.logout, methods=["POST"]),
            ]
        )

    async def logout(self, request: Request) -> Response:
        """``POST /logout?scope=local`` with the user's access token: its refresh tokens end."""
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer.count(".") != 2 or request.query_params.get("scope") != "local":
            return JSONResponse({"code": 401, "msg": "invalid JWT"}, status_code=401)
        self.sign_outs += 1
        self.live_refresh_tokens.clear()
        return Response(status_code=204)

    async def token(self, request: Request) -> JSONResponse:
        body = await request.json()
        grant = request.query_params.get("grant_type")
        if grant == "password" and (body.get("email"), body.get("password")) == (EMAIL, PASSWORD):
            return self.session()
        if grant == "refresh_token" and body.get("refresh_token") in self.live_refresh_tokens:
            self.live_refresh_tokens.discard(body["refresh_token"])
            self.refreshes += 1
            return self.session()
        if grant == "refresh_token":
            return JSONResponse(
                {
                    "code": 400,
                    "error_code": "refresh_token_already_used",
                    "msg": "Invalid Refresh Token: Already Used",
                },
                status_code=400,
            )
        return JSONResponse(
            {"error": "invalid_grant", "error_description": "Invalid login credentials"},
            status_code=400,
        )

    def session(self) -> JSONResponse:
        """A new session: an access token signed with the project's secret, a new refresh token."""
        self.issued += 1
        refresh = f"refresh-token-{self.issued}"
        self.live_refresh_tokens.add(refresh)
        user = {
            "id": str(self.user_id),
            "aud": "authenticated",
            "role": "authenticated",
            "email": EMAIL,
            "app_metadata": {"provider": "email"},
            "user_metadata": {},
            "created_at": "2026-11-01T12:00:00Z",
        }
        return JSONResponse(
            {
                "access_token": make_jwt(self.user_id, expires_in_s=self.lifetime_s, n=self.issued),
                "token_type": "bearer",
                "expires_in": int(self.lifetime_s),
                "expires_at": int(time.time() + self.lifetime_s),
                "refresh_token": refresh,
                "user": user,
            }
        )


@pytest.fixture
def operator_id(api_config: ApiConfig) -> uuid.UUID:
    """An admin user in the ``users`` table."""
    return insert_user(api_config.database_url.get_secret_value(), role="admin")


@pytest.fixture
def gotrue(operator_id: uuid.UUID) -> GoTrue:
    """The GoTrue stand-in's state."""
    return GoTrue(operator_id)


@pytest.fixture
async def auth_server(gotrue: GoTrue) -> AsyncIterator[str]:
    """The GoTrue stand-in on a free loopback port."""
    port = free_port()
    server = SignalFreeServer(  # pytest keeps SIGINT/SIGTERM
        uvicorn.Config(gotrue.app(), host="127.0.0.1", port=port, log_level="warning")
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


async def test_a_session_near_its_expiry_is_renewed_with_its_refresh_token(
    console: RunningApi, gotrue: GoTrue
) -> None:
    gotrue.lifetime_s = 120  # inside the console's renewal window (5 min)
    async with httpx.AsyncClient(base_url=console.url) as client:
        await submit(client, email=EMAIL, password=PASSWORD)
        first = client.cookies["aaltohub_session"]
        pages = [await client.get("/ui/groups") for _ in range(2)]
    assert [p.status_code for p in pages] == [200, 200]
    assert gotrue.refreshes == 2  # each page renewed the then-current session once
    assert client.cookies["aaltohub_session"] not in (first, "")
    assert client.cookies["aaltohub_refresh"] == "refresh-token-3"


async def test_a_refused_refresh_signs_the_user_out_and_says_so(
    console: RunningApi, gotrue: GoTrue
) -> None:
    gotrue.lifetime_s = 120
    async with httpx.AsyncClient(base_url=console.url) as client:
        await submit(client, email=EMAIL, password=PASSWORD)
        gotrue.live_refresh_tokens.clear()  # revoked, e.g. signed out everywhere
        page = await client.get("/ui/groups")
        assert "aaltohub_session" not in client.cookies
        assert "aaltohub_refresh" not in client.cookies
        login = await client.get(page.headers["location"])
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/login?ended=1&next=/ui/groups"
    assert "Your session ended" in login.text


async def test_a_session_far_from_expiry_is_not_renewed(
    console: RunningApi, gotrue: GoTrue
) -> None:
    async with httpx.AsyncClient(base_url=console.url) as client:
        await submit(client, email=EMAIL, password=PASSWORD)
        page = await client.get("/ui/groups")
    assert page.status_code == 200 and gotrue.refreshes == 0


async def test_the_live_pages_session_check_renews_an_expiring_session(
    console: RunningApi, gotrue: GoTrue
) -> None:
    gotrue.lifetime_s = 1  # as when the live feed closes at the token's expiry
    async with httpx.AsyncClient(base_url=console.url) as client:
        await submit(client, email=EMAIL, password=PASSWORD)
        alive = await client.get("/ui/session")
    async with httpx.AsyncClient(base_url=console.url) as stranger:
        unknown = await stranger.get("/ui/session")
    assert (alive.status_code, gotrue.refreshes, unknown.status_code) == (204, 1, 401)


async def test_sign_out_ends_the_supabase_session_too(console: RunningApi, gotrue: GoTrue) -> None:
    async with httpx.AsyncClient(base_url=console.url) as client:
        await submit(client, email=EMAIL, password=PASSWORD)
        users = await client.get("/ui/users")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', users.text)
        assert csrf is not None
        out = await client.post("/ui/logout", data={"csrf": csrf.group(1)})
    assert out.status_code == 303
    assert gotrue.sign_outs == 1 and not gotrue.live_refresh_tokens
    assert "aaltohub_session" not in client.cookies and "aaltohub_refresh" not in client.cookies


async def test_a_token_signed_by_someone_else_is_never_renewed(
    console: RunningApi, gotrue: GoTrue, operator_id: uuid.UUID
) -> None:
    forged = make_jwt(
        operator_id, secret="not-the-projects-secret-0123456789abcdef", expires_in_s=60
    )
    gotrue.live_refresh_tokens.add("stolen-or-made-up")
    cookies = {"aaltohub_session": forged, "aaltohub_refresh": "stolen-or-made-up"}
    async with httpx.AsyncClient(base_url=console.url, cookies=cookies) as client:
        page = await client.get("/ui/groups")
    assert page.status_code == 303 and page.headers["location"].startswith("/ui/login")
    assert gotrue.refreshes == 0
