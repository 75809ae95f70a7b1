"""A JetStream cluster of nats-servers on loopback ports, for ``aaltohub up --nats-cluster N``.

Each node is an ``NatsServer`` with its own store (``<root>/node-<i>/store``), client port and
route port; the routes authenticate with a generated password. Clients get every node's URL
(comma-separated), so they fail over when one dies; the stream runs with 3 replicas and a new
stream leader is elected within seconds of a leader's death (docs/decisions/034-clustered-log.md).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aaltohub.embedded.nats_server import ClusterRoutes, NatsServer
from aaltohub.embedded.process import free_port

CLUSTER_NAME = "aaltohub"


def node_name(index: int) -> str:
    """The server name of node ``index`` (0-based): ``n1``, ``n2``, …"""
    return f"n{index + 1}"


class NatsCluster:
    """``size`` nats-servers forming one JetStream cluster on ``host``."""

    def __init__(
        self,
        *,
        root: Path,
        size: int,
        route_password: str,
        sync_interval: str = "always",
        authorization: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        if size < 3:
            raise ValueError("a JetStream cluster needs at least 3 nodes (a raft majority of 2)")
        route_ports = [free_port(host) for _ in range(size)]
        self.nodes = [
            NatsServer(
                store_dir=root / f"node-{i + 1}" / "store",
                host=host,
                sync_interval=sync_interval,
                authorization=authorization,
                server_name=node_name(i),
                cluster=ClusterRoutes(
                    name=CLUSTER_NAME,
                    port=route_ports[i],
                    peers=tuple(p for j, p in enumerate(route_ports) if j != i),
                    password=route_password,
                ),
            )
            for i in range(size)
        ]

    @property
    def url(self) -> str:
        """Every node's client URL, comma-separated."""
        return ",".join(node.url for node in self.nodes)

    def start(self) -> str:
        """Start every node at once (each waits for its peers' routes) and return ``url``."""
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            for future in [pool.submit(node.start) for node in self.nodes]:
                future.result()
        return self.url

    def stop(self, *, timeout_s: float = 15.0) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop(timeout_s=timeout_s)
