"""Who may read, and what a caller reaches before authentication (issue 15, items 4, 6 and 7).

The review's attacks on the API, replayed against it as its entry points run it (real Postgres
and nats-server): any validly signed token read everything, anonymous Supabase users included;
`iss` was never checked; live connections outlived their token; a 400 MiB body was parsed before
the 401; `/metrics` and `/openapi.json` were open; two admins could demote each other at once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.api.conftest import make_jwt
from tests.api.rows import insert_user
from tests.security.conftest import StartApi

pytestmark = pytest.mark.timeout(120)

ISSUER = "https://project.supabase.co/auth/v1"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def get(url: str, path: str, token: str | None = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        return await client.get(path, headers=bearer(token) if token else {})


async def test_a_signed_token_of_an_unknown_user_reads_nothing(start_bounded_api: StartApi) -> None:
    api = await start_bounded_api({"role_cache_s": 0.0})
    response = await get(api.url, "/groups", make_jwt(uuid.uuid4()))
    assert response.status_code == 403


async def test_an_anonymous_supabase_user_is_refused(
    start_bounded_api: StartApi, migrated_db: str
) -> None:
    user = insert_user(migrated_db, role="user")
    api = await start_bounded_api()
    response = await get(api.url, "/groups", make_jwt(user, is_anonymous=True))
    assert response.status_code == 401


async def test_a_token_from_another_issuer_is_refused(
    start_bounded_api: StartApi, migrated_db: str
) -> None:
    user = insert_user(migrated_db, role="user")
    api = await start_bounded_api({"jwt_issuer": ISSUER})
    refused = await get(api.url, "/groups", make_jwt(user, iss="https://evil.example/auth/v1"))
    admitted = await get(api.url, "/groups", make_jwt(user, iss=ISSUER))
    assert (refused.status_code, admitted.status_code) == (401, 200)


async def test_a_live_connection_ends_when_its_token_expires(
    start_bounded_api: StartApi, migrated_db: str
) -> None:
    user = insert_user(migrated_db, role="user")
    api = await start_bounded_api()
    token = make_jwt(user, expires_in_s=2)
    url = api.url.replace("http://", "ws://") + "/live/ws"
    async with connect(url, additional_headers=bearer(token)) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=20)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


@pytest.mark.parametrize("mib", [2, 4, 16])
async def test_an_oversized_body_is_refused_before_authentication(
    mib: int, start_bounded_api: StartApi
) -> None:
    """A client that sends its whole body first reads the 413 (from 4 MiB on it saw a reset)."""
    api = await start_bounded_api()
    async with httpx.AsyncClient(base_url=api.url, timeout=20) as client:
        response = await client.post("/analytics/sql", content=b"x" * (mib * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["detail"] == "request bodies are limited to 1048576 bytes"


@pytest.mark.parametrize("path", ["/metrics", "/openapi.json", "/docs"])
async def test_side_doors_need_a_token(path: str, start_bounded_api: StartApi) -> None:
    api = await start_bounded_api()
    response = await get(api.url, path)
    assert response.status_code in {401, 404}


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    start_bounded_api: StartApi, migrated_db: str
) -> None:
    first, second = insert_user(migrated_db, role="admin"), insert_user(migrated_db, role="admin")
    api = await start_bounded_api({"role_cache_s": 0.0})

    async def demote(by: uuid.UUID, whom: uuid.UUID) -> int:
        async with httpx.AsyncClient(base_url=api.url, timeout=20) as client:
            response = await client.patch(
                f"/admin/users/{whom}", json={"role": "user"}, headers=bearer(make_jwt(by))
            )
        return response.status_code

    statuses = await asyncio.gather(demote(first, second), demote(second, first))
    admins = (
        (await get(api.url, "/admin/users", make_jwt(first))).status_code,
        (await get(api.url, "/admin/users", make_jwt(second))).status_code,
    )
    assert sorted(statuses) != [200, 200]
    assert sorted(admins) == [200, 403]


def test_a_short_admin_token_stops_the_api_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "AALTOHUB_ADMIN_TOKEN": "short-token", "AALTOHUB_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "aaltohub", "api"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "aaltohub api: AALTOHUB_ADMIN_TOKEN must have at least 32 characters"
        " (e.g. `openssl rand -hex 32`)"
    ]
