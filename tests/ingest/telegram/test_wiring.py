"""Workers built from settings and stored sessions; the ``aaltohub login`` key commands."""

from __future__ import annotations

import asyncio
import os

import pytest
from telethon.crypto import AuthKey
from telethon.sessions import StringSession

from aaltohub.cli import main
from aaltohub.settings import load_settings
from aaltohub.telegram import build_login_desk, build_telegram_workers
from eventlog import EventLog
from ingest.telegram.client import TelethonGateway
from ingest.telegram.sessions import Secret, SessionCipher, SessionStore

K1 = SessionCipher.generate_key("k1")
K2 = SessionCipher.generate_key("k2")
API_HASH = "0123456789abcdef0123456789abcdef"


def _session_string() -> str:
    s = StringSession()
    s.set_dc(2, "149.154.167.51", 443)
    s.auth_key = AuthKey(os.urandom(256))
    return str(StringSession.save(s))


@pytest.fixture
def database_url(migrated_db: str) -> str:
    """The tests here use the migrated tables (a copy of the session's template database)."""
    return migrated_db


async def test_workers_use_stored_sessions_and_the_issue_client_settings(
    database_url: str, event_log: EventLog
) -> None:
    store = SessionStore(database_url=database_url, cipher=SessionCipher.from_master_key(K1))
    secrets = {a: _session_string() for a in ("main", "second")}
    for account, value in secrets.items():
        await store.save(account, Secret(value))
    settings = load_settings(
        telegram_api_id=12345,
        telegram_api_hash=API_HASH,
        master_key=K1,
        telegram_accounts="main,second",
        telegram_use_ipv6=True,
    )
    workers = await build_telegram_workers(settings, log=event_log, database_url=database_url)
    assert [w.account for w in workers] == ["main", "second"]
    gateway = workers[0]._gateway
    assert isinstance(gateway, TelethonGateway)
    client = gateway._client
    assert (
        client._connection_retries,
        client._retry_delay,
        client._timeout,
        client._auto_reconnect,
    ) == (5, 3, 120, True)
    assert (
        client.flood_sleep_threshold == 0 and client._use_ipv6 is True and client._catch_up is True
    )
    assert StringSession.save(client.session) == secrets["main"]
    for text in (repr(workers[0]), repr(gateway), repr(settings), repr(store)):
        assert API_HASH not in text and secrets["main"] not in text and K1.split(":")[1] not in text


async def test_an_account_without_a_session_is_skipped_and_logins_are_served(
    database_url: str, event_log: EventLog, caplog: pytest.LogCaptureFixture
) -> None:
    store = SessionStore(database_url=database_url, cipher=SessionCipher.from_master_key(K1))
    await store.save("main", Secret(_session_string()))
    settings = load_settings(
        telegram_api_id=12345,
        telegram_api_hash=API_HASH,
        master_key=K1,
        telegram_accounts="main,newcomer",
    )
    workers = await build_telegram_workers(settings, log=event_log, database_url=database_url)
    assert [w.account for w in workers] == ["main"]
    assert "newcomer has no session yet" in caplog.text
    assert build_login_desk(settings, database_url=database_url) is not None
    assert build_login_desk(load_settings(master_key=K1), database_url=database_url) is None


async def test_login_rotate_reencrypts_stored_sessions(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await SessionStore(database_url=database_url, cipher=SessionCipher.from_master_key(K1)).save(
        "main", Secret("s3cr3t-session")
    )
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MASTER_KEY", f"{K2},{K1}")
    assert await _in_thread(["login", "--rotate"]) == 0
    assert "re-encrypted 1 session(s) with key k2" in capsys.readouterr().out
    only_k2 = SessionStore(database_url=database_url, cipher=SessionCipher.from_master_key(K2))
    assert (await only_k2.load("main")).reveal() == "s3cr3t-session"


async def _in_thread(argv: list[str]) -> int:
    return await asyncio.to_thread(main, argv)  # the command runs its own event loop


async def test_an_account_logged_in_later_is_crawled_without_being_configured(
    database_url: str, event_log: EventLog
) -> None:
    store = SessionStore(database_url=database_url, cipher=SessionCipher.from_master_key(K1))
    for account in ("main", "from-console"):
        await store.save(account, Secret(_session_string()))
    settings = load_settings(
        telegram_api_id=12345, telegram_api_hash=API_HASH, master_key=K1, telegram_accounts="main"
    )
    workers = await build_telegram_workers(settings, log=event_log, database_url=database_url)
    assert [w.account for w in workers] == ["main", "from-console"]
