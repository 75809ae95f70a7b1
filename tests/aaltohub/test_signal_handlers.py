"""Commands that handle SIGINT/SIGTERM while they run hand them back when they end.

uvloop's ``close`` leaves the Python-level handler of every signal a loop handled pointing at the
closed loop, so a process that ran ``aaltohub ingest``'s or ``project``'s loop in-process (a test,
an embedding program) ignored SIGINT and SIGTERM from then on.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine, Iterator
from types import FrameType

import pytest

from aaltohub import event_loop
from aaltohub.signals import on_signals
from aaltohub.subcommands.ingest import serve_until_signalled
from aaltohub.subcommands.project import run_until_sigterm

HANDLED = (signal.SIGINT, signal.SIGTERM)
Handler = Callable[[int, FrameType | None], object] | int | None


@pytest.fixture
def own_handlers() -> Iterator[dict[int, Handler]]:
    """Handlers of this test's own on SIGINT/SIGTERM (the previous ones come back afterwards)."""
    previous = {sig: signal.getsignal(sig) for sig in HANDLED}

    def mine(signum: int, frame: FrameType | None) -> None:
        """Not called: nothing sends a signal."""

    for sig in HANDLED:
        signal.signal(sig, mine)
    try:
        yield {sig: mine for sig in HANDLED}
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def done() -> None:
    """A service that ends at once."""


def test_the_handlers_come_back_after_on_signals(own_handlers: dict[int, Handler]) -> None:
    async def main() -> None:
        with on_signals(asyncio.get_running_loop(), HANDLED, lambda: None):
            assert all(signal.getsignal(sig) != own_handlers[sig] for sig in HANDLED)

    event_loop.run(main())
    assert {sig: signal.getsignal(sig) for sig in HANDLED} == own_handlers


@pytest.mark.parametrize(
    "until_signal",
    [serve_until_signalled, run_until_sigterm],
    ids=["ingest", "project"],
)
def test_a_command_hands_back_the_signals_it_handled(
    until_signal: Callable[[Coroutine[None, None, None]], Coroutine[None, None, None]],
    own_handlers: dict[int, Handler],
) -> None:
    event_loop.run(until_signal(done()))
    assert {sig: signal.getsignal(sig) for sig in HANDLED} == own_handlers
