"""Fixtures for the append-path tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aaltohub.embedded.nats_server import NatsServer
from eventlog import EventLog


@pytest.fixture
async def quick_log(nats_server: NatsServer) -> AsyncIterator[EventLog]:
    """An ``EventLog`` that gives up on an append within ~2 s (so the sink spools promptly)."""
    log = await EventLog.connect(nats_server.url, ack_timeout_s=0.5, append_deadline_s=1.5)
    try:
        yield log
    finally:
        await log.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs (a disk that fills up for real, ENOSPC from the kernel); root only."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)
