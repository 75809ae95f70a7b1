"""Bounded input and closed side doors of the API (issue 15): an oversized body is refused before
authentication, /metrics and the OpenAPI document need a token, a short admin token does not
start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pydantic
import pytest

from aaltohub.settings import load_settings
from api.config import ApiConfig
from eventlog import EventLog
from tests.api.conftest import ADMIN_TOKEN, RunningApi, make_jwt, start_api, stop_api
from tests.api.rows import insert_user

MIB = 1024 * 1024


async def test_an_oversized_body_is_refused_before_authentication(api: RunningApi) -> None:
    async with api.client(token=None) as client:
        response = await client.post("/analytics/sql", content=b"x" * (2 * MIB))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_chunked_oversized_body_is_cut_off(api: RunningApi) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"[" + b"1," * (32 * 1024)

    async with api.client() as client:
        response = await client.post("/analytics/sql", content=chunks())
    assert response.status_code == 413
    assert response.json()["detail"] == "request bodies are limited to 1048576 bytes"


async def test_a_body_under_the_limit_is_served(api: RunningApi) -> None:
    async with api.client() as client:
        response = await client.post("/analytics/sql", json={"sql": "SELECT 1 AS one"})
    assert response.status_code != 413


@pytest.mark.parametrize(("who", "status"), [("nobody", 401), ("reader", 403), ("admin", 200)])
async def test_metrics_are_for_admins(who: str, status: int, api: RunningApi) -> None:
    token = {
        "nobody": None,
        "reader": make_jwt(insert_user(api.database_url, role="user")),
        "admin": ADMIN_TOKEN,
    }[who]
    async with api.client(token=token) as client:
        response = await client.get("/metrics")
    assert response.status_code == status


async def test_metrics_can_be_made_public(api_config: ApiConfig, event_log: EventLog) -> None:
    server, task, url = await start_api(replace(api_config, public_metrics=True))
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            response = await client.get("/metrics")
    finally:
        await stop_api(server, task)
    assert response.status_code == 200


@pytest.mark.parametrize(("token", "status"), [(None, 401), (ADMIN_TOKEN, 200)])
async def test_the_openapi_document_needs_a_token(
    token: str | None, status: int, api: RunningApi
) -> None:
    async with api.client(token=token) as client:
        assert (await client.get("/openapi.json")).status_code == status
        assert (await client.get("/docs")).status_code == 404


def test_a_short_admin_token_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="at least 32 characters"):
        load_settings(AALTOHUB_ADMIN_TOKEN="too-short-to-be-safe")
