"""The embedded JetStream cluster of ``aaltohub up --nats-cluster 3``: three authenticated nodes
on loopback, a stream with 3 replicas, appends going on after the stream leader dies."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from aaltohub.embedded.nats_cluster import NatsCluster
from aaltohub.nats_auth import authorization_block, load_or_create_users, role_url
from eventlog import EventLog, EventLogError
from eventlog.permissions import ROLES
from schemas.stream import StreamSpec
from tests.helpers import posted, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[NatsCluster, str]]:
    """A started 3-node cluster and the operator's URL of every node."""
    users = load_or_create_users(tmp_path)
    nodes = NatsCluster(
        root=tmp_path / "nats",
        size=3,
        route_password="route-secret",
        sync_interval="2m",
        authorization=authorization_block(
            {role: users.password(role) for role in ROLES}, stream="TELEGRAM"
        ),
    )
    nodes.start()
    try:
        yield nodes, role_url(nodes.url, users, "operator")
    finally:
        nodes.stop()


async def connect_when_elected(url: str) -> EventLog:
    """The log with its 3-replica stream, once the cluster has elected its JetStream leader."""
    for _ in range(60):
        try:
            return await EventLog.connect(url, spec=StreamSpec(replicas=3))
        except EventLogError:
            await asyncio.sleep(0.5)  # the meta leader election takes a few seconds
    raise AssertionError("the cluster elected no JetStream leader within 30 s")


async def test_appends_continue_after_the_stream_leader_dies(
    cluster: tuple[NatsCluster, str],
) -> None:
    nodes, url = cluster
    assert url.count(",") == 2 and url.count("operator:") == 3
    async with await connect_when_elected(url) as probe:
        info = await probe.info()
    assert info.replicas == 3 and info.leader in {"n1", "n2", "n3"}
    leader_index = int(str(info.leader)[1:]) - 1
    # The client stays off the node the test kills (nats-py leaves a dead server's socket unclosed).
    others = ",".join(u for i, u in enumerate(url.split(",")) if i != leader_index)
    async with await EventLog.connect(others, spec=StreamSpec(replicas=3)) as log:
        await log.append(posted(-1001, 1))
        nodes.nodes[leader_index].kill()

        async def appended() -> bool:
            try:
                await log.append(posted(-1001, 2))
            except EventLogError:
                return False
            return True

        await wait_until(appended, timeout=60, interval=0.5)
        after = await log.info()
        assert after.leader not in (None, info.leader) and after.messages == 2
