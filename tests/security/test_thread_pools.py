"""The projector's DuckDB work has its own thread (issue 15, item 6).

Under `aaltohub up` ingest, the projector and the API share one event loop, and everything they
ran through ``asyncio.to_thread`` shared its default pool of six threads: admin SQL and named
analytics stalled the DuckDB projector. Analytics have their own pool
(tests/security/test_analytics_limits.py); here the default pool is held entirely by other work
while the DuckDB projection applies the log.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from eventlog import EventLog
from tests.factories import CHAN
from tests.helpers import posted
from tests.projector.conftest import run_to_end

pytestmark = pytest.mark.timeout(120)


async def test_the_duckdb_projector_applies_while_the_shared_pool_is_held(
    event_log: EventLog, tmp_path: Path
) -> None:
    await event_log.append_many([posted(CHAN, i) for i in range(1, 51)])
    release = threading.Event()
    loop = asyncio.get_running_loop()
    # Far more blocking calls than the default pool has threads: none is left for anyone else.
    holders = [loop.run_in_executor(None, release.wait) for _ in range(64)]
    try:
        projection = await asyncio.wait_for(run_to_end(event_log, tmp_path / "a.duckdb"), 30)
    finally:
        release.set()
        await asyncio.gather(*holders)
    assert projection.seq == 50
