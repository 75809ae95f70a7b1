"""The stack in-process with tiny services: phased stop order, crashes and failed starts leave nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psutil
import pytest

from aaltohub.embedded.nats_server import NatsServer
from aaltohub.embedded.process import free_port
from aaltohub.runtime import read_stack
from aaltohub.services import ServiceContext, ServiceSpec
from aaltohub.settings import load_settings
from aaltohub.stack import Stack, StackError
from tests.helpers import wait_until


def _recording_service(
    name: str, order: int, started: list[str], stopped: list[str]
) -> ServiceSpec:
    async def run(context: ServiceContext) -> None:
        started.append(name)
        try:
            await asyncio.Event().wait()
        finally:
            stopped.append(name)

    return ServiceSpec(
        name=name, run=run, stop_order=order, describe=lambda c: f"{name} on {c.nats_url}"
    )


async def test_services_stop_one_at_a_time_in_ascending_stop_order(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    started: list[str] = []
    stopped: list[str] = []
    services = [
        _recording_service(n, o, started, stopped)
        for n, o in (("projector", 30), ("api", 10), ("ingest", 20))
    ]
    settings = load_settings(
        data_dir=tmp_path / "var", nats_url=nats_server.url, database_url=database_url
    )
    lines: list[str] = []
    stack = Stack(settings, services=services, announce=lines.append)
    stop = asyncio.Event()
    task = asyncio.create_task(stack.run(stop))
    try:
        await wait_until(lambda: len(started) == 3, timeout=30)
        stop.set()
        assert await asyncio.wait_for(task, timeout=30) == 0
    finally:
        task.cancel()
    assert stopped == ["api", "ingest", "projector"]
    assert any(f"api on {nats_server.url}" in line for line in lines)
    assert (
        stack.nats is None and stack.postgres is None
    )  # configured externally: nothing embedded started


async def test_crashed_service_stops_the_stack_and_every_server(tmp_path: Path) -> None:
    pids: list[int] = []

    async def crash(context: ServiceContext) -> None:
        stack = read_stack(context.settings.data_path)
        assert stack is not None
        pids.extend(p for p in (stack.nats_pid, stack.postgres_pid) if p is not None)
        raise RuntimeError("boom")

    settings = load_settings(data_dir=tmp_path / "var")
    stack = Stack(
        settings,
        services=[ServiceSpec(name="crasher", run=crash, stop_order=1)],
        announce=lambda _: None,
        nats_port=free_port(),
    )
    assert await asyncio.wait_for(stack.run(asyncio.Event()), timeout=90) == 1
    assert len(pids) == 2
    assert not [p for p in pids if psutil.pid_exists(p)]


async def test_failed_start_stops_the_servers_already_started(tmp_path: Path) -> None:
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    settings = load_settings(data_dir=tmp_path / "var", database_url=unreachable)
    stack = Stack(settings, services=[], announce=lambda _: None, nats_port=free_port())
    with pytest.raises(StackError, match="migrations failed"):
        await asyncio.wait_for(stack.run(asyncio.Event()), timeout=60)
    assert stack.nats is not None and stack.nats.process is None
    assert not [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "nats-server" and str(tmp_path) in " ".join(p.info["cmdline"] or [])
    ]
