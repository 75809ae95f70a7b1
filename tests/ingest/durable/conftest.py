"""Fixtures for the append-path tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aaltohub.embedded.nats_server import NatsServer
from eventlog import EventLog
from tests.helpers import small_tmpfs


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
    with small_tmpfs(tmp_path / "small-disk", size="512k") as mount_point:
        yield mount_point
