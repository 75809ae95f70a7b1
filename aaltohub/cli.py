"""The ``aaltohub`` command line: one module per command group under ``aaltohub.subcommands``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Final

import pydantic

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
    "aaltohub.subcommands.health",
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


def settings_errors(error: pydantic.ValidationError) -> list[str]:
    """One line per invalid setting, naming its variable; never the value (it may be a secret)."""
    lines = []
    for item in error.errors(include_input=False, include_url=False):
        name = ".".join(str(part) for part in item["loc"]) or "settings"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(message if message.startswith(name) else f"{name}: {message}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aaltohub`` console script."""
    # Everything we create (data dir, DuckDB files, snapshots, spool, logs, secrets) is the owner's
    # alone: files 0600, directories 0700.
    previous = os.umask(0o077)
    try:
        args = build_parser().parse_args(argv)
        try:
            code: int = args.func(args)
        except pydantic.ValidationError as e:  # bad settings: one line each, never a traceback
            for line in settings_errors(e):
                print(f"aaltohub {args.command}: {line}", file=sys.stderr)
            return 2
    finally:
        os.umask(previous)  # restored for in-process callers (tests)
    return code


if __name__ == "__main__":
    sys.exit(main())
