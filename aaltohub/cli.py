"""The ``aaltohub`` command line: one module per command group under ``aaltohub.subcommands``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Final

# Each module has ``register(subparsers)`` adding its subcommand(s); a handler is stored as ``func``
# and receives the parsed args, returning the process exit code.
COMMAND_MODULES: Final = (
    "aaltohub.subcommands.migrate",
    "aaltohub.subcommands.up",
    "aaltohub.subcommands.env",
    "aaltohub.subcommands.log",
    "aaltohub.subcommands.project",
    "aaltohub.subcommands.replay",
    "aaltohub.subcommands.analytics",
    "aaltohub.subcommands.ingest",
    "aaltohub.subcommands.login",
    "aaltohub.subcommands.import_export",
    "aaltohub.subcommands.api",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (used by ``main`` and by the docker-compose contract test)."""
    parser = argparse.ArgumentParser(
        prog="aaltohub", description="Event-sourced Telegram group crawler"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aaltohub`` console script."""
    # Everything we create (data dir, DuckDB files, snapshots, spool, logs, secrets) is the owner's
    # alone: files 0600, directories 0700.
    previous = os.umask(0o077)
    try:
        args = build_parser().parse_args(argv)
        code: int = args.func(args)
    finally:
        os.umask(previous)  # restored for in-process callers (tests)
    return code


if __name__ == "__main__":
    sys.exit(main())
