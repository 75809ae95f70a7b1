"""The ``aaltohub`` command line: the grammar in ``aaltohub.subcommands.arguments``; a command's
implementation (a module of ``aaltohub.subcommands``) is imported only when that command runs, so
``--help`` and light commands never load Telethon, FastAPI, DuckDB …
(docs/decisions/048-cli-imports-on-demand.md)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

import pydantic

from aaltohub.subcommands.arguments import COMMANDS, Handler


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (used by ``main`` and by the docker-compose contract test)."""
    parser = argparse.ArgumentParser(
        prog="aaltohub", description="Event-sourced Telegram group crawler"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def load_handler(handler: Handler) -> Callable[[argparse.Namespace], int]:
    """Import the command's implementation module and return its function."""
    module = importlib.import_module(f"aaltohub.subcommands.{handler.module}")
    function: Callable[[argparse.Namespace], int] = getattr(module, handler.function)
    return function


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
        run = load_handler(args.handler)
        try:
            code = run(args)
        except pydantic.ValidationError as e:  # bad settings: one line each, never a traceback
            for line in settings_errors(e):
                print(f"aaltohub {args.command}: {line}", file=sys.stderr)
            return 2
    finally:
        os.umask(previous)  # restored for in-process callers (tests)
    return code


if __name__ == "__main__":
    sys.exit(main())
