"""Basic groups number messages per account (id_scope): every lookup by (chat, id) names the
account, in the JSON API and in the console (message page, media, event history, links)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import psycopg
import pytest

from api.config import ApiConfig
from eventlog import EventLog
from tests.api.conftest import ADMIN_TOKEN, RunningApi, start_api, stop_api
from tests.api.rows import insert_group
from tests.helpers import posted

GROUP = -4242  # a basic group: ids are per account
MESSAGE = 5
ACCOUNTS = ("a", "b")


@pytest.fixture
def media_config(api_config: ApiConfig, tmp_path: Path) -> ApiConfig:
    """The test API serving media from a local media dir, one file per account's message 5."""
    media = tmp_path / "media"
    media.mkdir()
    for account in ACCOUNTS:
        (media / f"{account}.txt").write_bytes(f"{account}'s bytes".encode())
    return replace(api_config, media_dir=media)


@pytest.fixture
async def scoped_api(media_config: ApiConfig, event_log: EventLog) -> AsyncIterator[RunningApi]:
    """A running API over two accounts' message 5 in one basic group, and their posts in the log."""
    url = media_config.database_url.get_secret_value()
    insert_group(url, GROUP, title="Basic group")
    seqs = [
        (await event_log.append(posted(GROUP, MESSAGE, text=f"{a}'s fifth", account=a))).seq
        for a in ACCOUNTS
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        for account, seq in zip(ACCOUNTS, seqs, strict=True):
            conn.execute(
                "INSERT INTO messages (chat_id, id_scope, message_id, account, date, text, source, "
                "first_seq, last_seq, observed_at, media_path, media_type) VALUES "
                "(%s, %s, %s, %s, now(), %s, 'live', %s, %s, now(), %s, 'document')",
                (
                    GROUP,
                    account,
                    MESSAGE,
                    account,
                    f"{account}'s fifth",
                    seq,
                    seq,
                    f"{account}.txt",
                ),
            )
    server, task, api_url = await start_api(media_config)
    try:
        yield RunningApi(url=api_url, config=media_config, database_url=url, event_log=event_log)
    finally:
        await stop_api(server, task)


def console(api: RunningApi) -> httpx.AsyncClient:
    """A console client signed in as the static admin (the session cookie)."""
    return httpx.AsyncClient(
        base_url=api.url, cookies={"aaltohub_session": ADMIN_TOKEN}, timeout=10
    )


async def test_media_of_a_basic_group_message_is_the_named_accounts(
    scoped_api: RunningApi,
) -> None:
    path = f"/groups/{GROUP}/messages/{MESSAGE}/media"
    async with scoped_api.client() as client:
        bodies = {a: (await client.get(path, params={"account": a})).content for a in ACCOUNTS}
    assert bodies == {"a": b"a's bytes", "b": b"b's bytes"}


async def test_console_message_page_shows_the_named_accounts_message_and_media(
    scoped_api: RunningApi,
) -> None:
    async with console(scoped_api) as client:
        page = (await client.get(f"/ui/groups/{GROUP}/messages/{MESSAGE}?account=b")).text
        media = await client.get(f"/ui/media/{GROUP}/{MESSAGE}?account=b")
    assert "b&#39;s fifth" in page and "a&#39;s fifth" not in page
    assert f"/ui/media/{GROUP}/{MESSAGE}?account=b" in page
    assert media.content == b"b's bytes"


async def test_console_group_page_links_each_accounts_message(scoped_api: RunningApi) -> None:
    async with console(scoped_api) as client:
        page = (await client.get(f"/ui/groups/{GROUP}")).text
    for account in ACCOUNTS:
        assert f'href="/ui/groups/{GROUP}/messages/{MESSAGE}?account={account}"' in page
        assert f'id="m-{MESSAGE}-{account}"' in page


async def test_console_event_history_holds_only_the_named_accounts_events(
    scoped_api: RunningApi,
) -> None:
    async with console(scoped_api) as client:
        page = (await client.get(f"/ui/groups/{GROUP}/messages/{MESSAGE}/events?account=a")).text
    assert "a&#39;s fifth" in page or "a's fifth" in page
    assert "b's fifth" not in page and "b&#39;s fifth" not in page
