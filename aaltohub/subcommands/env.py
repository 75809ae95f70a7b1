"""``aaltohub env``: the connection settings of the running stack as shell ``export`` lines."""

from __future__ import annotations

import argparse
import shlex
import sys

from aaltohub.runtime import resolve_database_url
from aaltohub.settings import Settings, load_settings
from aaltohub.stack_file import StackNotRunning, read_stack


def export_lines(settings: Settings) -> list[str]:
    """``export NAME=value`` lines (shell-quoted); raises ``StackNotRunning`` if nothing is reachable."""
    stack = read_stack(settings.data_path)
    if stack is None and not settings.nats_url:
        raise StackNotRunning(
            f"no running `aaltohub up` for {settings.data_path} and NATS_URL is not set"
        )
    values: dict[str, str | None] = {
        # Without credentials: each subcommand authenticates as its own role (see resolve_nats_url).
        "NATS_URL": settings.nats_url or (stack.nats_url if stack is not None else None),
        "DATABASE_URL": resolve_database_url(settings),
        "AALTOHUB_DUCKDB_PATH": stack.duckdb_path
        if stack is not None
        else str(settings.duckdb_file),
        "AALTOHUB_API_URL": stack.api_url if stack is not None else None,
    }
    lines = [
        f"export {name}={shlex.quote(value)}" for name, value in values.items() if value is not None
    ]
    if values["AALTOHUB_API_URL"] is None:
        lines.append("# AALTOHUB_API_URL: no API service is running")
    return lines


def run(args: argparse.Namespace) -> int:
    """Print the export lines, or a clear error on stderr (exit 1) when nothing runs."""
    try:
        lines = export_lines(load_settings())
    except StackNotRunning as e:
        print(f"aaltohub env: {e}; start it with `aaltohub up`", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0
