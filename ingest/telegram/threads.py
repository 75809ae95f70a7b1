"""Ingest's blocking calls (psycopg, file writes) on threads of its own.

Under ``aaltohub up`` ingest, the projector and the API share one event loop, and
``asyncio.to_thread`` hands every blocking call to that loop's one default pool: a burst of one
service's calls (or a slow JWKS fetch of the API) left the others waiting for a thread. Ingest's
stores take the executor of the ingest process (``ingest_threads``), bounded and named ``ingest``;
without one they fall back to the loop's default pool (tests, one-off subcommands).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

INGEST_THREADS = 4  # a worker's stores call one at a time; a few accounts share these


def ingest_threads(threads: int = INGEST_THREADS) -> ThreadPoolExecutor:
    """A bounded pool for one ingest process's blocking calls (the caller shuts it down)."""
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ingest")


async def off_loop(executor: Executor | None, fn: Callable[[], T]) -> T:
    """``fn()`` on ``executor`` (None: the loop's default pool), awaited without blocking the loop."""
    return await asyncio.get_running_loop().run_in_executor(executor, fn)
