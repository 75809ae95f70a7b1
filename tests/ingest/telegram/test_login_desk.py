"""The console's Telegram logins in ingest: the login desk over the fake login network, a real
Postgres for the encrypted session, and the ingest service serving it over a real NATS."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telethon import errors as tg_errors

from aaltohub.embedded.nats_server import NatsServer
from eventlog import EventLog, NoCommandHandler
from ingest.service import IngestService
from ingest.telegram.assignment import ChatAssignment
from ingest.telegram.gateway import PeerRef
from ingest.telegram.login_desk import LoginDesk
from ingest.telegram.sessions import SessionCipher, SessionStore
from ingest.telegram.worker import TelegramAccountWorker, WorkerConfig
from schemas.commands import (
    ReportStatus,
    StartLogin,
    SubmitLoginCode,
    SubmitLoginPassword,
    ingest_subject,
    login_subject,
)
from schemas.events import ChatDiscovered
from tests.helpers import wait_until
from tests.ingest.durable.helpers import make_sink, read_events
from tests.ingest.telegram.fakes import FakeGateway, FakeLoginNetwork

KEY = SessionCipher.generate_key("k1")
PHONE, CODE, PASSWORD = "+358401234567", "24680", "hunter2-cloud-pw"


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def network() -> FakeLoginNetwork:
    """Telegram's login side with one 2FA phone."""
    fake = FakeLoginNetwork()
    fake.register(PHONE, code=CODE, password=PASSWORD)
    return fake


@pytest.fixture
def store(migrated_db: str) -> SessionStore:
    """The encrypted session store in a real Postgres."""
    return SessionStore(database_url=migrated_db, cipher=SessionCipher.from_master_key(KEY))


@pytest.fixture
def clock() -> Clock:
    """The desk's clock."""
    return Clock()


@pytest.fixture
def desk(network: FakeLoginNetwork, store: SessionStore, clock: Clock) -> LoginDesk:
    """A login desk on the fake network."""
    return LoginDesk(client_factory=network.client, store=store, ttl_s=600, clock=clock)


async def start(desk: LoginDesk, account: str = "second") -> str:
    """Start a login and return its id."""
    reply = await desk.handle(StartLogin(account=account, phone=PHONE))
    assert reply.ok and reply.login is not None and reply.login.step == "code", reply
    return reply.login.login_id


async def test_code_and_password_store_the_session_and_nothing_typed_leaks(
    desk: LoginDesk,
    store: SessionStore,
    network: FakeLoginNetwork,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    login_id = await start(desk)
    wrong = await desk.handle(SubmitLoginPassword(login_id=login_id, password="early"))
    after_code = await desk.handle(SubmitLoginCode(login_id=login_id, code=CODE))
    bad_pw = await desk.handle(SubmitLoginPassword(login_id=login_id, password="not-it-pw"))
    done = await desk.handle(SubmitLoginPassword(login_id=login_id, password=PASSWORD))
    assert not wrong.ok
    assert after_code.login is not None and after_code.login.step == "password"
    assert bad_pw.login is not None and bad_pw.login.problem == "wrong_password"
    assert bad_pw.login.step == "password"
    assert done.ok and done.login is not None and done.login.step == "done", done
    assert (await store.load("second")).reveal() == network.session_of(PHONE)
    assert network.open_connections == 0
    said = [caplog.text, repr(desk), *(repr(r) for r in (wrong, after_code, bad_pw, done))]
    said += [repr(SubmitLoginPassword(login_id="x", password=PASSWORD))]
    for secret in (PHONE, "401234567", CODE, PASSWORD, "not-it-pw", network.session_of(PHONE)):
        assert all(secret not in text for text in said), secret


async def test_wrong_code_keeps_the_login_at_the_code_step(desk: LoginDesk) -> None:
    login_id = await start(desk)
    wrong = await desk.handle(SubmitLoginCode(login_id=login_id, code="11111"))
    assert not wrong.ok and wrong.login is not None
    assert (wrong.login.step, wrong.login.problem) == ("code", "wrong_code")
    assert "11111" not in wrong.message
    again = await desk.handle(SubmitLoginCode(login_id=login_id, code=CODE))
    assert again.login is not None and again.login.step == "password"


async def test_expired_code_closes_the_login_and_asks_to_start_again(
    desk: LoginDesk, network: FakeLoginNetwork
) -> None:
    login_id = await start(desk)
    network.fail["sign_in_code"] = [tg_errors.PhoneCodeExpiredError(request=None)]
    expired = await desk.handle(SubmitLoginCode(login_id=login_id, code=CODE))
    assert expired.login is not None
    assert (expired.login.step, expired.login.problem) == ("start", "code_expired")
    assert "expired" in expired.message
    assert network.open_connections == 0
    gone = await desk.handle(SubmitLoginCode(login_id=login_id, code=CODE))
    assert gone.login is not None and gone.login.problem == "unknown_login"


async def test_flood_wait_is_answered_with_its_seconds(
    desk: LoginDesk, network: FakeLoginNetwork
) -> None:
    network.fail["send_code"] = [tg_errors.FloodWaitError(request=None, capture=420)]
    reply = await desk.handle(StartLogin(account="second", phone=PHONE))
    assert not reply.ok and reply.login is not None
    assert (reply.login.problem, reply.login.retry_after_s) == ("flood_wait", 420)
    assert "420" in reply.message
    assert network.open_connections == 0


async def test_unfinished_login_expires_and_closes_its_connection(
    desk: LoginDesk, network: FakeLoginNetwork, clock: Clock
) -> None:
    login_id = await start(desk)
    assert network.open_connections == 1
    clock.now += 601
    reply = await desk.handle(SubmitLoginCode(login_id=login_id, code=CODE))
    assert reply.login is not None and reply.login.problem == "unknown_login"
    assert network.open_connections == 0


async def test_reserved_account_name_is_refused_before_telegram_is_asked(
    desk: LoginDesk, network: FakeLoginNetwork
) -> None:
    reply = await desk.handle(StartLogin(account="login", phone=PHONE))
    assert not reply.ok and network.codes_sent == 0


async def test_ingest_service_serves_logins_over_nats_when_it_has_a_desk(
    tmp_path: Path, nats_server: NatsServer, event_log: EventLog, desk: LoginDesk
) -> None:
    command = StartLogin(account="second", phone=PHONE)
    with pytest.raises(NoCommandHandler):  # nobody serves logins yet
        await event_log.request(login_subject(command), command, timeout_s=2)
    async with serving(tmp_path, nats_server.url, desk) as service:
        await wait_until(service.serving.is_set, timeout=10)
        reply = await event_log.request(login_subject(command), command, timeout_s=5)
    assert reply.ok and reply.login is not None and reply.login.step == "code", reply


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, url: str, desk: LoginDesk) -> AsyncIterator[IngestService]:
    """The ingest service (no sources) with ``desk``, on the test's NATS."""

    async def connect() -> EventLog:
        return await EventLog.connect(url, ack_timeout_s=0.5, append_deadline_s=1.5)

    service = IngestService(
        sources=list, sink=make_sink(tmp_path, None), connect_log=connect, demo=False, logins=desk
    )
    task = asyncio.create_task(service.run())
    try:
        yield service
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_an_account_logged_in_through_ingest_is_crawled_at_once(
    tmp_path: Path,
    nats_server: NatsServer,
    event_log: EventLog,
    network: FakeLoginNetwork,
    store: SessionStore,
) -> None:
    group = PeerRef(peer_id=-4343, kind="chat", title="Newcomers", chat_kind="group")
    gateway = FakeGateway(dialogs=[group])
    services: list[IngestService] = []

    async def crawl(account: str) -> None:  # what `aaltohub ingest` wires: a worker on the session
        assert (await store.load(account)).reveal()
        worker = TelegramAccountWorker(
            account=account,
            gateway=gateway,
            log_reader=event_log,
            config=WorkerConfig(backfill_pause_s=0.0, connection_check_s=10_000),
            assignment=ChatAssignment(),
        )
        await services[0].add_source(worker)

    desk = LoginDesk(client_factory=network.client, store=store, on_logged_in=crawl)
    async with serving(tmp_path, nats_server.url, desk) as service:
        services.append(service)
        await wait_until(service.serving.is_set, timeout=10)
        start_cmd = StartLogin(account="second", phone=PHONE)
        started = await event_log.request(login_subject(start_cmd), start_cmd, timeout_s=5)
        assert started.login is not None
        code = SubmitLoginCode(login_id=started.login.login_id, code=CODE)
        await event_log.request(login_subject(code), code, timeout_s=5)
        password = SubmitLoginPassword(login_id=started.login.login_id, password=PASSWORD)
        done = await event_log.request(login_subject(password), password, timeout_s=5)
        assert done.ok and "crawling has started" in done.message, done
        status = ReportStatus()
        subject = ingest_subject(status, account="second")

        async def connected() -> bool:
            reply = await event_log.request(subject, status, timeout_s=5)
            accounts = reply.crawler.accounts if reply.crawler else ()
            return [(a.account, a.connected) for a in accounts] == [("second", True)]

        await wait_until(connected, timeout=20)

        async def discovered() -> bool:
            events = await read_events(event_log)
            return any(isinstance(e, ChatDiscovered) and e.account == "second" for e in events)

        await wait_until(discovered, timeout=20)
