"""Two API workers with one configuration: a console form rendered by one posts to the other."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from api.config import ApiConfig
from eventlog import EventLog
from tests.api.conftest import ADMIN_TOKEN, start_api, stop_api


@pytest.fixture
async def two_workers(api_config: ApiConfig, event_log: EventLog) -> AsyncIterator[list[str]]:
    """Two API servers (separate apps, as two worker processes would be) on one configuration."""
    del event_log  # the stream must exist before the APIs start
    servers = [await start_api(api_config) for _ in range(2)]
    try:
        yield [url for _server, _task, url in servers]
    finally:
        for server, task, _url in servers:
            await stop_api(server, task)


async def test_a_sign_in_form_from_one_worker_is_accepted_by_another(
    two_workers: list[str],
) -> None:
    first, second = two_workers
    async with httpx.AsyncClient(base_url=first, timeout=10) as browser:
        form = await browser.get("/ui/login")
        match = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
        assert match is not None
        nonce = browser.cookies["aaltohub_login"]
    async with httpx.AsyncClient(
        base_url=second, timeout=10, cookies={"aaltohub_login": nonce}
    ) as browser:
        signed_in = await browser.post(
            "/ui/login", data={"csrf": match.group(1), "token": ADMIN_TOKEN, "next": "/ui/"}
        )
    assert signed_in.status_code == 303, signed_in.text
    assert browser.cookies["aaltohub_session"] == ADMIN_TOKEN
