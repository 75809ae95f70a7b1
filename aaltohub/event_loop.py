"""Running a service's main coroutine on uvloop (libuv), which halves the event loop's per-socket cost.

The API's live fan-out writes to hundreds of sockets per event batch; on the stdlib loop that overhead
dominated its latency. uvloop comes with ``uvicorn[standard]``; without it (e.g. Windows) the stdlib
loop runs the same code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
