"""The compose NATS configuration: the same users and permissions as the embedded server's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from aaltohub.embedded.nats_server import NatsServer
from aaltohub.nats_auth import authorization_block, url_with_user
from eventlog import AppendFailed, EventLog, EventLogAuthFailed
from eventlog.permissions import ROLES
from schemas.stream import StreamSpec
from tests.helpers import posted

ROOT = Path(__file__).resolve().parents[2]
CONF = (ROOT / "docker" / "nats.conf").read_text()
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
VARIABLES = {role: f"$NATS_{role.upper()}_PASSWORD" for role in ROLES}


def compose_block() -> str:
    """The authorization block of docker/nats.conf."""
    return CONF[CONF.index("authorization {") :]


def test_compose_nats_conf_has_the_permissions_of_the_embedded_server() -> None:
    assert compose_block() == authorization_block(VARIABLES, stream=StreamSpec().name)


def test_every_compose_service_connects_as_its_own_user() -> None:
    users = {
        name: spec["environment"].get("NATS_USER")
        for name, spec in COMPOSE["services"].items()
        if "build" in spec and name != "migrate"
    }
    assert users == {
        "stream": "operator",
        "ingest": "ingest",
        "projector": "projector",
        "api": "api",
    }


def test_compose_has_no_default_passwords() -> None:
    references = re.findall(
        r"\$\{(\w*PASSWORD\w*)([^}]*)\}", (ROOT / "docker-compose.yml").read_text()
    )
    assert len(references) >= 10
    # NATS_ROUTE_PASSWORD may stay unset: it switches the cluster profile on, and without it the
    # server has no route listener at all (docker/nats-start.sh), so nothing runs without a password.
    optional = {"NATS_ROUTE_PASSWORD"}
    assert [n for n, rest in references if not rest.startswith(":?") and n not in optional] == []


async def test_the_compose_block_refuses_a_forged_event_and_admits_ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passwords = {role: f"{role}-secret-from-env" for role in ROLES}
    for role, password in passwords.items():
        monkeypatch.setenv(f"NATS_{role.upper()}_PASSWORD", password)
    server = NatsServer(
        store_dir=tmp_path / "js", sync_interval="2m", authorization=compose_block()
    )
    server.start()
    try:
        with pytest.raises(EventLogAuthFailed):
            await EventLog.connect(server.url, ensure=False, connect_timeout_s=5)
        operator = await EventLog.connect(
            url_with_user(server.url, "operator", passwords["operator"])
        )
        try:
            for role, expect_stored in (("api", False), ("ingest", True)):
                log = await EventLog.connect(
                    url_with_user(server.url, role, passwords[role]),
                    ensure=False,
                    ack_timeout_s=1.0,
                    append_deadline_s=2.0,
                )
                try:
                    if expect_stored:
                        await log.append(posted(-1001, 1))
                    else:
                        with pytest.raises(AppendFailed):
                            await log.append(posted(-1001, 2))
                finally:
                    await log.close()
            assert (await operator.info()).messages == 1
        finally:
            await operator.close()
    finally:
        server.stop()
