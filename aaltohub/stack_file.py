"""The stack file of a data dir: ``aaltohub up`` writes where each server listens, other commands read
it. Only the standard library and msgspec, so that a command which only needs to know where things
listen (``aaltohub health api``) loads nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec


def connect_host(listen_host: str) -> str:
    """The address a local client connects to for a server listening on ``listen_host``
    (the wildcard addresses mean loopback)."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(listen_host, listen_host)


class StackInfo(msgspec.Struct, kw_only=True):
    """Where the services of a running ``aaltohub up`` listen (written to ``<data>/run/stack.json``)."""

    pid: int
    nats_url: str
    database_url: str
    duckdb_path: str
    api_url: str | None = None
    nats_pid: int | None = None
    postgres_pid: int | None = None
    restarts: dict[str, int] = msgspec.field(default_factory=dict)  # by server / service name
    # Recorded at migrate time (docs/decisions/029); None from an `up` that predates them.
    stack_id: str | None = None
    postgres_system_id: str | None = None
    nats_nodes: dict[str, int] = msgspec.field(default_factory=dict)  # cluster node name: pid
    # Where each service's Prometheus metrics answer (``aaltohub health`` reads them here).
    metrics_urls: dict[str, str] = msgspec.field(default_factory=dict)


class StackNotRunning(RuntimeError):
    """No ``aaltohub up`` runs for this data dir and no URL is configured."""


def stack_file(data_dir: Path) -> Path:
    """Path of the stack file of ``data_dir``."""
    return data_dir / "run" / "stack.json"


def write_stack(data_dir: Path, info: StackInfo) -> None:
    """Atomically write the stack file (readable by the owner only: it holds connection URLs)."""
    path = stack_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(info))
    tmp.chmod(0o600)
    os.replace(tmp, path)


def remove_stack(data_dir: Path) -> None:
    """Remove the stack file."""
    stack_file(data_dir).unlink(missing_ok=True)


def read_stack(data_dir: Path) -> StackInfo | None:
    """The stack of a live ``up`` for ``data_dir``, or None (a stale file of a dead process is ignored)."""
    path = stack_file(data_dir)
    try:
        info = msgspec.json.decode(path.read_bytes(), type=StackInfo)
    except (OSError, msgspec.DecodeError):
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return info
