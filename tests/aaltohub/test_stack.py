"""The stack in-process with tiny services: phased stop order, crashes and failed starts leave nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from aaltohub.embedded.nats_server import NatsServer
from aaltohub.embedded.process import free_port
from aaltohub.services import ServiceContext, ServiceSpec
from aaltohub.settings import load_settings
from aaltohub.stack import Stack, StackError
from aaltohub.stack_file import read_stack
from aaltohub.supervise import RestartPolicy
from tests.aaltohub.upproc import says_ready
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

    settings = load_settings(data_dir=tmp_path / "var", nats_port=free_port())
    stack = Stack(
        settings,
        services=[ServiceSpec(name="crasher", run=crash, stop_order=1)],
        announce=lambda _: None,
        restart_policy=RestartPolicy(burst=2, first_backoff_s=0.05),
    )
    assert await asyncio.wait_for(stack.run(asyncio.Event()), timeout=90) == 1
    assert stack.restarts == {"crasher": 2}  # restarted twice, then the budget was spent
    assert len(set(pids)) == 2
    assert not [p for p in pids if psutil.pid_exists(p)]


async def test_a_dead_nats_server_is_restarted_and_counted_in_the_stack_file(
    tmp_path: Path, database_url: str
) -> None:
    settings = load_settings(
        data_dir=tmp_path / "var", database_url=database_url, nats_port=free_port()
    )
    stop = asyncio.Event()
    stack = Stack(
        settings,
        services=[_recording_service("idle", 1, [], [])],
        announce=lambda _: None,
        restart_policy=RestartPolicy(first_backoff_s=0.05),
    )
    run = asyncio.create_task(stack.run(stop))
    try:
        await wait_until(lambda: read_stack(settings.data_path) is not None, timeout=60)
        first = read_stack(settings.data_path)
        assert first is not None and first.nats_pid is not None
        psutil.Process(first.nats_pid).kill()

        def restarted() -> bool:
            info = read_stack(settings.data_path)
            return (
                info is not None
                and info.restarts.get("nats-server") == 1
                and info.nats_pid is not None
            )

        await wait_until(restarted, timeout=30)
        again = read_stack(settings.data_path)
        assert again is not None and again.nats_pid not in (None, first.nats_pid)
        assert again.nats_pid is not None and psutil.pid_exists(again.nats_pid)
    finally:
        stop.set()
        code = await asyncio.wait_for(run, timeout=60)
    assert code == 0


async def test_the_embedded_nats_server_listens_on_the_configured_port(
    tmp_path: Path, database_url: str
) -> None:
    port = free_port()
    settings = load_settings(data_dir=tmp_path / "var", database_url=database_url, nats_port=port)
    stop = asyncio.Event()
    stack = Stack(
        settings, services=[_recording_service("idle", 1, [], [])], announce=lambda _: None
    )
    run = asyncio.create_task(stack.run(stop))
    try:
        await wait_until(lambda: read_stack(settings.data_path) is not None, timeout=60)
        info = read_stack(settings.data_path)
        assert info is not None and info.nats_url == f"nats://127.0.0.1:{port}"
    finally:
        stop.set()
        code = await asyncio.wait_for(run, timeout=60)
    assert code == 0


async def test_failed_start_stops_the_servers_already_started(tmp_path: Path) -> None:
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    settings = load_settings(
        data_dir=tmp_path / "var", database_url=unreachable, nats_port=free_port()
    )
    stack = Stack(settings, services=[], announce=lambda _: None)
    with pytest.raises(StackError, match="migrations failed"):
        await asyncio.wait_for(stack.run(asyncio.Event()), timeout=60)
    assert stack.nats is not None and stack.nats.process is None
    assert not [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "nats-server" and str(tmp_path) in " ".join(p.info["cmdline"] or [])
    ]


async def test_ready_is_announced_only_once_every_probed_service_serves(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    entered = asyncio.Event()
    may_serve = asyncio.Event()
    serving = asyncio.Event()

    async def run(context: ServiceContext) -> None:
        entered.set()
        await may_serve.wait()
        serving.set()
        await asyncio.Event().wait()

    async def ready(context: ServiceContext) -> None:
        await serving.wait()

    spec = ServiceSpec(name="slow", run=run, stop_order=1, ready=ready)
    settings = load_settings(
        data_dir=tmp_path / "var", nats_url=nats_server.url, database_url=database_url
    )
    lines: list[str] = []
    stop = asyncio.Event()
    task = asyncio.create_task(Stack(settings, services=[spec], announce=lines.append).run(stop))
    try:
        await wait_until(entered.is_set, timeout=30)
        assert not says_ready("\n".join(lines))  # running, not serving yet
        may_serve.set()
        await wait_until(lambda: says_ready("\n".join(lines)), timeout=30)
        assert "not answering" not in "\n".join(lines)
        stop.set()
        assert await asyncio.wait_for(task, timeout=30) == 0
    finally:
        task.cancel()


_REPO = Path(__file__).resolve().parents[2]
_STUBBORN_STACK = """
import asyncio, sys
from aaltohub import event_loop
from aaltohub.services import ServiceSpec
from aaltohub.settings import load_settings
from aaltohub.stack import Stack
from aaltohub.subcommands.up import run_stack_until_signalled

async def stubborn(context):
    while True:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            continue  # ignores every cancellation

settings = load_settings(data_dir=sys.argv[1], nats_url=sys.argv[2], database_url=sys.argv[3])
spec = ServiceSpec(name="stubborn", run=stubborn, stop_order=1)
stack = Stack(settings, services=[spec], announce=lambda text: print(text, flush=True))
sys.exit(event_loop.run(run_stack_until_signalled(stack)))
"""


async def test_a_service_ignoring_its_cancellation_does_not_keep_up_from_exiting(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> None:
    script = tmp_path / "stubborn_stack.py"
    script.write_text(_STUBBORN_STACK)
    output = tmp_path / "out.txt"
    with output.open("wb") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 (started, not waited on, here)
            [sys.executable, str(script), str(tmp_path / "var"), nats_server.url, database_url],
            cwd=_REPO,
            env={**os.environ, "AALTOHUB_STOP_GRACE_S": "10"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        await wait_until(lambda: says_ready(output.read_text()), timeout=60)
        proc.send_signal(signal.SIGINT)
        code = await asyncio.to_thread(proc.wait, 60)  # before: waited for the service forever
        assert code == 1, output.read_text()
        assert "stubborn did not stop" in output.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
