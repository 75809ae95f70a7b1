"""``aaltohub up``: the whole stack on one machine (see ``aaltohub.stack``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from aaltohub import event_loop
from aaltohub.datalock import DataDirLocked
from aaltohub.logging_setup import configure_logging, scrub, secret_values
from aaltohub.settings import load_settings
from aaltohub.stack import Stack, StackError
from aaltohub.wiring import SERVICES


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``up``."""
    parser = subparsers.add_parser(
        "up",
        help="start nats-server and Postgres (unless NATS_URL/DATABASE_URL are set), migrate, run the services",
    )
    parser.add_argument(
        "--nats-cluster",
        type=int,
        default=1,
        metavar="N",
        help="run the embedded log as a JetStream cluster of N >= 3 nodes on loopback ports"
        " (the stream gets 3 replicas); for trying failover, production uses compose's profile",
    )
    parser.set_defaults(func=run)


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

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        return await stack.run(stop)
    except (DataDirLocked, StackError) as e:
        _print(f"aaltohub up: {scrub(str(e), secret_values(stack.settings))}", err=True)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _print(text: str, *, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout, flush=True)
