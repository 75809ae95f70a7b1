"""Each NATS user can do its job and nothing else; no credential, no connection (issue 15, item 1).

The attacks of the review, replayed against a nats-server configured like ``aaltohub up``'s: a
forged event appended by a service other than ingest, a command sent by a service other than the
API (to the real ingest service), and the stream deleted or purged by anyone but the operator.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from aaltohub.embedded.nats_server import NatsServer
from aaltohub.nats_auth import NatsUsers, role_url, users_file
from aaltohub.service_ingest import INGEST_SERVICE
from aaltohub.services import ServiceContext
from aaltohub.settings import load_settings
from eventlog import AppendFailed, EventLog, EventLogAuthFailed, EventLogError
from eventlog.permissions import Role
from schemas.commands import ReportStatus, ingest_subject
from schemas.stream import StreamSpec
from tests.helpers import posted, wait_until

STATUS = ingest_subject(ReportStatus())  # to every account

pytestmark = pytest.mark.timeout(60)


async def connect_as(server: NatsServer, users: NatsUsers, role: Role) -> EventLog:
    """The log as ``role``, without touching the stream's config."""
    return await EventLog.connect(
        role_url(server.url, users, role),
        spec=StreamSpec(),
        ensure=False,
        ack_timeout_s=1.0,
        append_deadline_s=2.0,
    )


@pytest.fixture
async def ingest_running(
    tmp_path: Path, secured_nats: NatsServer, nats_users: NatsUsers, operator_log: EventLog
) -> AsyncIterator[None]:
    """The real ingest service (demo source) authenticated as ``ingest``, serving its commands."""
    settings = load_settings(
        data_dir=tmp_path / "data",
        demo_rate_per_s=2.0,
        telegram_api_id=None,
        telegram_api_hash=None,
    )
    context = ServiceContext(
        settings=settings,
        nats_url=secured_nats.url,
        nats_users=nats_users,
        database_url="unused",
        duckdb_path=tmp_path / "a.duckdb",
    )
    task = asyncio.ensure_future(INGEST_SERVICE.run(context))
    api = await connect_as(secured_nats, nats_users, "api")
    try:

        async def answering() -> bool:
            try:
                await api.request(STATUS, ReportStatus(), timeout_s=1)
            except EventLogError:
                return False
            return True

        await wait_until(answering, timeout=20)
        yield
    finally:
        await api.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_generated_users_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    from aaltohub.nats_auth import load_or_create_users

    load_or_create_users(tmp_path / "d")
    assert users_file(tmp_path / "d").stat().st_mode & 0o777 == 0o600
    assert users_file(tmp_path / "d").parent.stat().st_mode & 0o777 == 0o700


async def test_a_connection_without_credentials_is_refused(secured_nats: NatsServer) -> None:
    with pytest.raises(EventLogAuthFailed, match="anonymous"):
        await EventLog.connect(secured_nats.url, ensure=False, connect_timeout_s=5)


async def test_a_wrong_password_is_refused(secured_nats: NatsServer) -> None:
    url = secured_nats.url.replace("://", "://ingest:not-the-password@")
    with pytest.raises(EventLogAuthFailed, match="'ingest'"):
        await EventLog.connect(url, ensure=False, connect_timeout_s=5)


async def test_ingest_appends_events(
    secured_nats: NatsServer, nats_users: NatsUsers, operator_log: EventLog
) -> None:
    ingest = await connect_as(secured_nats, nats_users, "ingest")
    try:
        result = await ingest.append(posted(-1001, 1))
    finally:
        await ingest.close()
    assert (await operator_log.info()).last_seq == result.seq == 1


@pytest.mark.parametrize("role", ["projector", "api"])
async def test_a_forged_event_from_another_service_is_refused(
    role: Role, secured_nats: NatsServer, nats_users: NatsUsers, operator_log: EventLog
) -> None:
    forger = await connect_as(secured_nats, nats_users, role)
    try:
        with pytest.raises(AppendFailed):
            await forger.append(posted(-1001, 666, text="forged"))
    finally:
        await forger.close()
    assert (await operator_log.info()).messages == 0


@pytest.mark.parametrize("role", ["ingest", "projector", "api"])
async def test_every_service_reads_the_log(
    role: Role, secured_nats: NatsServer, nats_users: NatsUsers, operator_log: EventLog
) -> None:
    await operator_log.append_many([posted(-1001, i) for i in range(1, 6)])
    reader = await connect_as(secured_nats, nats_users, role)
    try:
        seqs = [r.seq async for batch in reader.read(1) for r in batch]
        got = await reader.get(3)
    finally:
        await reader.close()
    assert seqs == [1, 2, 3, 4, 5] and got.seq == 3


async def test_the_api_commands_the_ingest_service(
    ingest_running: None, secured_nats: NatsServer, nats_users: NatsUsers
) -> None:
    api = await connect_as(secured_nats, nats_users, "api")
    try:
        reply = await api.request(STATUS, ReportStatus(), timeout_s=2)
    finally:
        await api.close()
    assert reply.ok and reply.message == "ingest status"


@pytest.mark.parametrize("role", ["ingest", "projector"])
async def test_a_command_from_another_service_is_refused(
    role: Role, ingest_running: None, secured_nats: NatsServer, nats_users: NatsUsers
) -> None:
    sender = await connect_as(secured_nats, nats_users, role)
    try:
        with pytest.raises(EventLogError, match="no reply"):
            await sender.request(STATUS, ReportStatus(), timeout_s=1)
    finally:
        await sender.close()


@pytest.mark.parametrize("role", ["ingest", "projector", "api"])
@pytest.mark.parametrize("action", ["delete", "purge", "update"])
async def test_only_the_operator_changes_the_stream(
    role: Role,
    action: str,
    secured_nats: NatsServer,
    nats_users: NatsUsers,
    operator_log: EventLog,
) -> None:
    await operator_log.append(posted(-1001, 1))
    client = await nats.connect(role_url(secured_nats.url, nats_users, role))
    try:
        js = client.jetstream(timeout=1)
        with pytest.raises(nats.errors.TimeoutError):  # refused: the request never reaches the API
            if action == "delete":
                await js.delete_stream("TELEGRAM")
            elif action == "purge":
                await js.purge_stream("TELEGRAM")
            else:
                await js.update_stream(name="TELEGRAM", subjects=["tg.>"], deny_delete=False)
    finally:
        await client.close()
    info = await operator_log.info()
    assert info.messages == 1


async def test_the_operator_is_refused_nothing(
    secured_nats: NatsServer, nats_users: NatsUsers, operator_log: EventLog
) -> None:
    client = await nats.connect(role_url(secured_nats.url, nats_users, "operator"))
    try:
        js = client.jetstream(timeout=2)
        await js.add_stream(name="SCRATCH", subjects=["scratch.>"])
        assert await js.delete_stream("SCRATCH")
    finally:
        await client.close()
