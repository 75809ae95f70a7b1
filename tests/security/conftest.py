"""A nats-server with the stack's users and permissions (as ``aaltohub up`` starts it), and its users."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aaltohub.embedded.nats_server import NatsServer
from aaltohub.nats_auth import NatsUsers, authorization_block, load_or_create_users, role_url
from eventlog import EventLog
from eventlog.permissions import ROLES
from schemas.stream import StreamSpec


@pytest.fixture
def nats_users(tmp_path: Path) -> NatsUsers:
    """Generated users of a fresh data dir."""
    return load_or_create_users(tmp_path / "data")


@pytest.fixture
def secured_nats(tmp_path: Path, nats_users: NatsUsers) -> Iterator[NatsServer]:
    """A nats-server that admits only the generated users, each with its role's permissions."""
    block = authorization_block(
        {role: nats_users.password(role) for role in ROLES}, stream=StreamSpec().name
    )
    server = NatsServer(store_dir=tmp_path / "jetstream", sync_interval="2m", authorization=block)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def operator_log(secured_nats: NatsServer, nats_users: NatsUsers) -> AsyncIterator[EventLog]:
    """The log as the operator (who created the stream)."""
    url = role_url(secured_nats.url, nats_users, "operator")
    log = await EventLog.connect(url, spec=StreamSpec(), ack_timeout_s=2.0, append_deadline_s=10.0)
    try:
        yield log
    finally:
        await log.close()
