"""Handling SIGINT/SIGTERM on the event loop for a while, then handing them back."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterable, Iterator


@contextlib.contextmanager
def on_signals(
    loop: asyncio.AbstractEventLoop,
    signals: Iterable[signal.Signals],
    callback: Callable[[], object],
) -> Iterator[None]:
    """Call ``callback`` on the loop when one of ``signals`` arrives, while inside; on the way out
    the handlers that were in place before are back.

    Removing a loop's handler resets the signal to its default, not to what was there before, and
    uvloop's ``close`` does not even do that: the signal stays with the closed loop, and the process
    ignores it from then on.
    """
    previous = {sig: signal.getsignal(sig) for sig in signals}
    try:
        for sig in previous:
            loop.add_signal_handler(sig, callback)
        yield
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            if handler is not None:  # None: installed outside Python, nothing to put back
                signal.signal(sig, handler)
