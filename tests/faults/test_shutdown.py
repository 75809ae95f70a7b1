"""Shutdown that finishes: SIGTERM to ``aaltohub up`` while its nats-server is stalled (SIGSTOP)
completes within the grace period, exits 0 and leaves no unretrieved-exception warnings."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.aaltohub.upproc import UpProcess
from tests.helpers import wait_until

pytestmark = pytest.mark.slow

GRACE_S = 30.0
SERVICES_RUNNING = (
    "ingest: serving commands",
    "projector: running",
    "Application startup complete",
)


async def test_sigterm_with_nats_stalled_stops_within_the_grace_period(tmp_path: Path) -> None:
    up = UpProcess(tmp_path / "var")
    up.start()
    nats_pid: int | None = None
    try:
        stack = await up.wait_ready(timeout_s=90)
        await wait_until(lambda: all(line in up.text() for line in SERVICES_RUNNING), timeout=60)
        nats_pid = stack.nats_pid
        assert nats_pid is not None and up.proc is not None
        os.kill(nats_pid, signal.SIGSTOP)
        started = time.monotonic()
        code = up.interrupt(timeout_s=GRACE_S + 15, sig=signal.SIGTERM)
        took_s = time.monotonic() - started
        output = up.text()
        assert code == 0, output
        assert took_s < GRACE_S, output
        assert "never retrieved" not in output
        assert "did not stop" not in output
    finally:
        if nats_pid is not None:
            try:
                os.kill(nats_pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        up.stop()
