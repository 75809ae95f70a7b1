"""``aaltohub up``: the whole stack on one machine (see ``aaltohub.stack``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
from typing import Final

from aaltohub import event_loop
from aaltohub.datalock import DataDirLocked
from aaltohub.logging_setup import configure_logging, scrub, secret_values
from aaltohub.settings import load_settings
from aaltohub.signals import on_signals
from aaltohub.stack import Stack, StackError
from aaltohub.wiring import SERVICES

# Once the stack is down, how long tearing down the process may take before it exits anyway.
EXIT_WATCHDOG_S: Final = 10.0


def run(args: argparse.Namespace) -> int:
    """Run the stack until Ctrl-C/SIGTERM; a second signal kills the servers at once."""
    settings = load_settings()
    configure_logging(settings)
    if args.nats_cluster != 1 and args.nats_cluster < 3:
        _print("aaltohub up: --nats-cluster needs at least 3 nodes", err=True)
        return 2
    stack = Stack(settings, services=SERVICES, announce=_print, nats_cluster=args.nats_cluster)
    return event_loop.run(run_stack_until_signalled(stack))


async def run_stack_until_signalled(stack: Stack) -> int:
    """Run ``stack`` with SIGINT/SIGTERM handlers: the first stops in phases, the second forcibly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        if not stop.is_set():
            stop.set()
            return
        _print("aaltohub up: second signal, stopping the servers now")
        stack.stop_servers()
        os._exit(130)

    with on_signals(loop, (signal.SIGINT, signal.SIGTERM), on_signal):
        try:
            code = await stack.run(stop)
        except (DataDirLocked, StackError) as e:
            _print(f"aaltohub up: {scrub(str(e), secret_values(stack.settings))}", err=True)
            code = 1
    _arm_exit_watchdog(code, stack.abandoned_services)
    return code


def _arm_exit_watchdog(code: int, abandoned: list[str]) -> None:
    """The servers are stopped; if the process does not end within ``EXIT_WATCHDOG_S`` (a service
    that ignored its cancellation, a thread stuck in a blocking call that the event loop's
    teardown waits for), end it anyway with ``code``, saying so."""

    def force_exit() -> None:
        left = f" ({', '.join(abandoned)} did not stop)" if abandoned else ""
        _print(f"aaltohub up: exiting without waiting further{left}", err=True)
        os._exit(code)

    timer = threading.Timer(0.0 if abandoned else EXIT_WATCHDOG_S, force_exit)
    timer.daemon = True
    timer.start()


def _print(text: str, *, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout, flush=True)
