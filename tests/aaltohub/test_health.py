"""``aaltohub health <service>`` (the compose healthchecks) against a real ``aaltohub up``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aaltohub.embedded.process import free_port
from tests.aaltohub.upproc import UpProcess, run_cli
from tests.helpers import wait_until


@pytest.fixture(scope="module")
def ports() -> dict[str, str]:
    """Metrics ports of this module's stack (the defaults may be another stack's on this host)."""
    return {
        "AALTOHUB_INGEST_METRICS_PORT": str(free_port()),
        "AALTOHUB_PROJECTOR_METRICS_PORT": str(free_port()),
    }


@pytest.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, ports: dict[str, str]
) -> AsyncIterator[UpProcess]:
    """A running `aaltohub up` with the demo."""
    process = UpProcess(tmp_path_factory.mktemp("health") / "var", **ports)
    process.start()
    try:
        await process.wait_ready(timeout_s=120)
        yield process
    finally:
        process.stop()


@pytest.mark.parametrize("service", ["ingest", "projector", "api"])
async def test_health_says_ok_for_each_service_of_a_running_stack(
    stack: UpProcess, service: str
) -> None:
    answers: list[str] = []

    async def healthy() -> bool:
        # No port settings here: the check finds the running stack's ports in its stack file.
        done = await asyncio.to_thread(
            lambda: run_cli(stack.data_dir, "health", service, timeout_s=30.0)
        )
        answers.append(done.stdout)
        return done.returncode == 0

    await wait_until(healthy, timeout=60, interval=0.5)
    assert answers[-1].startswith(f"{service} ok: ") and answers[-1].count("\n") == 1


async def test_projector_health_fails_past_its_lag_bound(
    stack: UpProcess, ports: dict[str, str]
) -> None:
    # The demo appends while the check runs: the projection is at least one event behind the
    # head sometimes; a bound of -1 is never met.
    done = await asyncio.to_thread(
        lambda: run_cli(
            stack.data_dir, "health", "projector", "--max-lag", "-1", timeout_s=30.0, **ports
        )
    )
    assert done.returncode == 1
    assert done.stdout.startswith("projector unhealthy: ") and "behind the log" in done.stdout


@pytest.mark.parametrize("service", ["ingest", "projector", "api"])
def test_health_fails_with_one_line_when_nothing_runs(tmp_path: Path, service: str) -> None:
    port = str(free_port())  # nothing listens there
    done = run_cli(
        tmp_path / "var",
        "health",
        service,
        AALTOHUB_API_PORT=port,
        AALTOHUB_INGEST_METRICS_PORT=port,
        AALTOHUB_PROJECTOR_METRICS_PORT=port,
    )
    assert done.returncode == 1
    assert done.stdout.startswith(f"{service} unhealthy: no answer from http://127.0.0.1:{port}")
    assert done.stdout.count("\n") == 1 and not done.stderr
