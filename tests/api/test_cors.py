"""CORS: only the configured origins of outside frontends may call the API from a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from api.config import ApiConfig
from eventlog import EventLog
from tests.api.conftest import ADMIN_TOKEN, start_api, stop_api

ALLOWED = "https://app.example.org"


@pytest.fixture
async def cors_api(api_config: ApiConfig, event_log: EventLog) -> AsyncIterator[str]:
    """An API with one allowed origin."""
    server, task, url = await start_api(replace(api_config, cors_origins=(ALLOWED,)))
    try:
        yield url
    finally:
        await stop_api(server, task)


async def test_an_allowed_origin_may_call_the_api(cors_api: str) -> None:
    async with httpx.AsyncClient(base_url=cors_api) as client:
        preflight = await client.options(
            "/groups",
            headers={
                "Origin": ALLOWED,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        response = await client.get(
            "/groups", headers={"Origin": ALLOWED, "Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
    assert preflight.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED


async def test_another_origin_gets_no_cors_headers(cors_api: str) -> None:
    async with httpx.AsyncClient(base_url=cors_api) as client:
        response = await client.get(
            "/groups",
            headers={"Origin": "https://evil.example", "Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    assert "access-control-allow-origin" not in response.headers
