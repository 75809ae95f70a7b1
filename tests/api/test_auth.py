"""Authentication and authorisation: JWTs, the static admin token, roles from ``users``."""

from __future__ import annotations

import uuid
from dataclasses import replace

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from api.auth import Authenticator
from api.config import ApiConfig
from api.db import Database, open_pool
from api.errors import Unauthorized
from eventlog import EventLog
from tests.api.conftest import (
    ADMIN_TOKEN,
    JWT_SECRET,
    RunningApi,
    make_jwt,
    start_api,
    stop_api,
)
from tests.api.rows import insert_user

ISSUER = "https://project.supabase.co/auth/v1"


async def test_missing_token_is_401_without_detail(api: RunningApi) -> None:
    async with api.client(token=None) as client:
        response = await client.get("/groups")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"
    assert "detail" not in response.json()


async def test_garbage_token_is_401(api: RunningApi) -> None:
    async with api.client(token="not-a-jwt") as client:
        response = await client.get("/groups")
    assert response.status_code == 401


async def test_token_signed_with_another_secret_is_401(api: RunningApi) -> None:
    async with api.client(
        token=make_jwt(uuid.uuid4(), secret="some-other-secret-0123456789abcdef")
    ) as client:
        response = await client.get("/groups")
    assert response.status_code == 401


async def test_expired_token_is_401(api: RunningApi) -> None:
    async with api.client(token=make_jwt(uuid.uuid4(), expires_in_s=-60)) as client:
        response = await client.get("/groups")
    assert response.status_code == 401


async def test_token_for_another_audience_is_401(api: RunningApi) -> None:
    async with api.client(token=make_jwt(uuid.uuid4(), audience="anon")) as client:
        response = await client.get("/groups")
    assert response.status_code == 401


async def test_token_whose_subject_is_not_a_uuid_is_401(api: RunningApi) -> None:
    async with api.client(token=make_jwt("service-role")) as client:
        response = await client.get("/groups")
    assert response.status_code == 401


async def test_unknown_user_is_recorded_without_access(api: RunningApi) -> None:
    user_id = uuid.uuid4()
    async with api.client(token=make_jwt(user_id, email="new@example.org")) as client:
        response = await client.get("/groups")
    assert response.status_code == 403
    with psycopg.connect(api.database_url) as conn:
        row = conn.execute("SELECT email, role FROM users WHERE id = %s", (user_id,)).fetchone()
    assert row == ("new@example.org", "none")


async def test_a_user_without_access_reads_once_granted(api: RunningApi) -> None:
    user_id = insert_user(api.database_url, role="none")
    async with api.client(token=make_jwt(user_id)) as client:
        assert (await client.get("/groups")).status_code == 403
        api.sql("UPDATE users SET role = 'user' WHERE id = %s", (user_id,))
        assert (await client.get("/groups")).status_code == 200  # role_cache_s = 0 in tests


async def test_anonymous_supabase_user_is_refused_even_with_a_users_row(api: RunningApi) -> None:
    user_id = insert_user(api.database_url, role="user")
    async with api.client(token=make_jwt(user_id, is_anonymous=True)) as client:
        response = await client.get("/groups")
    assert response.status_code == 401


async def test_a_token_with_the_anon_role_is_refused(api: RunningApi) -> None:
    user_id = insert_user(api.database_url, role="user")
    async with api.client(token=make_jwt(user_id, role="anon")) as client:
        response = await client.get("/groups")
    assert response.status_code == 401


async def test_role_comes_from_the_users_table(api: RunningApi) -> None:
    admin_id = insert_user(api.database_url, role="admin")
    async with api.client(token=make_jwt(admin_id)) as client:
        response = await client.get("/admin/users")
    assert response.status_code == 200


async def test_user_on_admin_route_is_403(api: RunningApi) -> None:
    user_id = insert_user(api.database_url, role="user")
    async with api.client(token=make_jwt(user_id)) as client:
        response = await client.get("/admin/status")
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


async def test_static_admin_token_is_admin(api: RunningApi) -> None:
    async with api.client(token=ADMIN_TOKEN) as client:
        response = await client.get("/me")
    assert response.json() == {"user_id": None, "role": "admin"}


async def test_no_secret_appears_in_responses_or_openapi(api: RunningApi) -> None:
    async with api.client(token="wrong") as client:
        texts = [
            (await client.get(path)).text
            for path in ("/groups", "/openapi.json", "/metrics", "/health")
        ]
    for text in texts:
        assert JWT_SECRET not in text
        assert ADMIN_TOKEN not in text


async def test_config_repr_hides_secrets(api: RunningApi) -> None:
    text = repr(api.config)
    assert JWT_SECRET not in text
    assert ADMIN_TOKEN not in text


async def _authenticator(
    database_url: str, *, role_cache_s: float
) -> tuple[Authenticator, AsyncConnectionPool]:
    pool = await open_pool(database_url, min_size=1, max_size=2, timeout_s=5)
    auth = Authenticator(
        db=Database(pool, timeout_s=5),
        jwt_secret=JWT_SECRET,
        jwks_url=None,
        audience="authenticated",
        admin_token=None,
        role_cache_s=role_cache_s,
    )
    return auth, pool


async def test_a_verified_token_is_reused_until_its_role_is_forgotten(migrated_db: str) -> None:
    user_id = insert_user(migrated_db, role="user")
    token = make_jwt(user_id)
    auth, pool = await _authenticator(migrated_db, role_cache_s=60)
    try:
        assert (await auth.authenticate(token)).role == "user"
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            conn.execute("UPDATE users SET role = 'admin' WHERE id = %s", (user_id,))
        assert (await auth.authenticate(token)).role == "user"  # cached for role_cache_s
        auth.forget(user_id)
        assert (await auth.authenticate(token)).role == "admin"
        with pytest.raises(Unauthorized):  # the cache never vouches for a token it has not verified
            await auth.authenticate(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    finally:
        await pool.close()


async def test_newcomers_read_when_the_configured_role_is_user(
    api_config: ApiConfig, event_log: EventLog
) -> None:
    server, task, url = await start_api(replace(api_config, new_user_role="user"))
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            response = await client.get(
                "/groups", headers={"Authorization": f"Bearer {make_jwt(uuid.uuid4())}"}
            )
    finally:
        await stop_api(server, task)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("issuer", "status"), [(None, 401), ("https://evil.example/auth/v1", 401), (ISSUER, 200)]
)
async def test_the_issuer_is_checked_when_configured(
    issuer: str | None, status: int, api_config: ApiConfig, event_log: EventLog
) -> None:
    user_id = insert_user(api_config.database_url.get_secret_value(), role="user")
    token = make_jwt(user_id) if issuer is None else make_jwt(user_id, iss=issuer)
    server, task, url = await start_api(replace(api_config, jwt_issuer=ISSUER))
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            response = await client.get("/groups", headers={"Authorization": f"Bearer {token}"})
    finally:
        await stop_api(server, task)
    assert response.status_code == status
