"""What the bulk loads of both sinks share: how the process that reads the log and feeds helper
processes through pipes gives its threads the interpreter."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Final

# How long a busy thread keeps the GIL from one waiting for it while a load runs (Python's default:
# 5 ms). The pipes to a helper move a batch in 64 KB pieces, and each piece waited a whole interval
# for the thread reading the log (docs/decisions/044-duckdb-rebuild-load-pipeline.md).
LOAD_SWITCH_INTERVAL_S: Final = 0.0005


@contextlib.contextmanager
def short_gil_slices(interval_s: float = LOAD_SWITCH_INTERVAL_S) -> Iterator[None]:
    """Hand the GIL over at most every ``interval_s`` meanwhile (never longer than it was)."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, interval_s))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)
