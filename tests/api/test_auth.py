"""Authentication and authorisation: JWTs, the static admin token, roles from ``users``."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from api.auth import Authenticator
from api.db import Database, open_pool
from api.errors import Unauthorized
from tests.api.conftest import ADMIN_TOKEN, JWT_SECRET, RunningApi, make_jwt
from tests.api.rows import insert_user


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


async def test_valid_token_of_unknown_user_reads_as_user(api: RunningApi) -> None:
    user_id = uuid.uuid4()
    async with api.client(token=make_jwt(user_id)) as client:
        response = await client.get("/me")
    assert response.json() == {"user_id": str(user_id), "role": "user"}


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
