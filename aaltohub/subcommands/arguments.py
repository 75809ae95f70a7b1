"""What each ``aaltohub`` command accepts, and which function implements it.

Building the parser imports only this module: the implementations (``aaltohub.subcommands.<name>``,
with Telethon, FastAPI, DuckDB, psycopg, nats …) are imported by ``aaltohub.cli`` when their command
runs (docs/decisions/048-cli-imports-on-demand.md). So this module imports nothing but the standard
library.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, TypeAlias

# A string: argparse's action class is generic only to type checkers.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

HEALTH_SERVICES: Final = ("ingest", "projector", "api")
DEFAULT_MAX_LAG: Final = 10_000  # events; a healthy projector is seconds behind at most
DEFAULT_TAIL: Final = 20  # `log tail` without --from or --limit: the last this many records
# What `project --projection` accepts: aaltohub.service_projector.KNOWN_PROJECTIONS (a test keeps
# the two equal; that module loads every projection's sink, so it is not imported here).
PROJECTIONS: Final = ("postgres", "duckdb", "broadcast")
REPLAYABLE: Final = ("postgres", "duckdb")


@dataclass(frozen=True)
class Handler:
    """A command's implementation by name: ``function`` of ``aaltohub.subcommands.<module>``; it
    takes the parsed arguments and returns the exit code."""

    module: str
    function: str = "run"


def add_migrate(subparsers: Subparsers) -> None:
    """Add ``migrate``."""
    parser = subparsers.add_parser(
        "migrate", help="apply schemas/supabase/migrations/*.sql (idempotent)"
    )
    parser.add_argument(
        "--service-roles",
        action="store_true",
        help="as DATABASE_URL's administrator: create or update the roles aaltohub_owner, "
        "aaltohub_projector, aaltohub_ingest and aaltohub_api (POSTGRES_*_PASSWORD), give the "
        "owner what the migrations create, and grant each service only its tables (compose)",
    )
    parser.set_defaults(handler=Handler("migrate"))


def add_up(subparsers: Subparsers) -> None:
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
    parser.set_defaults(handler=Handler("up"))


def add_env(subparsers: Subparsers) -> None:
    """Add ``env``."""
    parser = subparsers.add_parser(
        "env",
        help='print export lines for the running stack of the data dir: eval "$(aaltohub env)"',
    )
    parser.set_defaults(handler=Handler("env"))


def add_log(subparsers: Subparsers) -> None:
    """Add ``log info``, ``log tail`` and ``log init``."""
    parser = subparsers.add_parser("log", help="inspect the event log (the JetStream stream)")
    sub = parser.add_subparsers(dest="log_command", required=True, metavar="ACTION")
    info = sub.add_parser("info", help="stream state: first/last seq, messages, bytes")
    info.set_defaults(handler=Handler("log", "run_info"))
    tail = sub.add_parser("tail", help="decoded events, one per line")
    tail.add_argument(
        "--from",
        dest="from_seq",
        type=int,
        default=None,
        metavar="SEQ",
        help=f"start at this seq (default: the last {DEFAULT_TAIL} or --limit records)",
    )
    tail.add_argument(
        "--chat", type=int, default=None, metavar="ID", help="only this chat (marked id, -100…)"
    )
    tail.add_argument(
        "--kind",
        default=None,
        metavar="K",
        help="only this kind, or kind prefix: message.posted, message, chat, ingest …",
    )
    tail.add_argument("--limit", type=int, default=None, metavar="N", help="stop after N events")
    tail.add_argument(
        "--json", action="store_true", help="print the stored JSON (with seq and subject)"
    )
    tail.add_argument(
        "--follow", "-f", action="store_true", help="keep printing new events as they land"
    )
    tail.set_defaults(handler=Handler("log", "run_tail"))
    init = sub.add_parser(
        "init", help="create the stream or update it to the settings (needs the operator user)"
    )
    init.set_defaults(handler=Handler("log", "run_init"))


def add_project(subparsers: Subparsers) -> None:
    """Add ``project`` and ``retry``."""
    parser = subparsers.add_parser(
        "project", help="run the projections (AALTOHUB_PROJECTIONS) until Ctrl-C"
    )
    parser.add_argument(
        "--projection",
        action="append",
        choices=PROJECTIONS,
        help="run only this projection (repeatable)",
    )
    parser.set_defaults(handler=Handler("project", "run_project"))
    retry = subparsers.add_parser(
        "retry", help="re-apply dead letters (through the running projector if any)"
    )
    group = retry.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--id", type=int, action="append", dest="ids", help="dead letter id (repeatable)"
    )
    group.add_argument("--all", action="store_true", help="every unresolved dead letter")
    retry.set_defaults(handler=Handler("project", "run_retry"))


def add_replay(subparsers: Subparsers) -> None:
    """Add ``replay``."""
    parser = subparsers.add_parser(
        "replay", help="rebuild a projection from the log while the old one serves"
    )
    parser.add_argument("--projection", required=True, choices=REPLAYABLE)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="events per batch (default 20000 for postgres, 10000 for duckdb)",
    )
    parser.add_argument(
        "--keep-old", action="store_true", help="keep the replaced Postgres tables (retired_*)"
    )
    parser.set_defaults(handler=Handler("replay"))


def add_analytics(subparsers: Subparsers) -> None:
    """Add ``analytics``."""
    parser = subparsers.add_parser("analytics", help="print an analytics query as a table")
    parser.add_argument("query", nargs="?", help="query name; omit to list them")
    parser.add_argument("--chat", type=int, default=None, help="only this chat id")
    parser.add_argument(
        "--since", type=datetime.fromisoformat, default=None, help="ISO time, inclusive"
    )
    parser.add_argument(
        "--until", type=datetime.fromisoformat, default=None, help="ISO time, exclusive"
    )
    parser.add_argument(
        "--file", type=Path, default=None, help="a DuckDB file (default: the published dataset)"
    )
    parser.set_defaults(handler=Handler("analytics"))


def add_ingest(subparsers: Subparsers) -> None:
    """Add ``ingest``."""
    parser = subparsers.add_parser(
        "ingest", help="run ingest (Telegram, or the demo source without credentials)"
    )
    parser.add_argument(
        "--demo", action="store_true", help="run the demo source even if credentials are set"
    )
    parser.set_defaults(handler=Handler("ingest"))


def add_login(subparsers: Subparsers) -> None:
    """Add ``login``."""
    parser = subparsers.add_parser(
        "login", help="log a Telegram account in and store its encrypted session"
    )
    parser.add_argument(
        "--account", default=None, help="account name (default: the first of TELEGRAM_ACCOUNTS)"
    )
    parser.add_argument(
        "--generate-key", action="store_true", help="print a new MASTER_KEY entry and exit"
    )
    parser.add_argument(
        "--rotate", action="store_true", help="re-encrypt stored sessions with the first key"
    )
    parser.set_defaults(handler=Handler("login"))


def add_import(subparsers: Subparsers) -> None:
    """Add ``import``."""
    parser = subparsers.add_parser(
        "import", help="import a Telegram Desktop export (result.json) into the log"
    )
    parser.add_argument(
        "path", type=Path, help="result.json of a single-chat or a full-account export"
    )
    parser.add_argument(
        "--account", help="account the events are recorded for (default: first configured)"
    )
    parser.add_argument(
        "--chat-id",
        type=int,
        help="marked chat id (-100… for channels); for a full export, import only this chat",
    )
    parser.add_argument(
        "--migrated-from",
        type=int,
        help="id of the basic group the supergroup was (-id, or the bare id): its history from "
        "before the migration is filed under it (with --chat-id for a full export)",
    )
    parser.add_argument(
        "--tz",
        help="time zone of local dates in older exports (no date_unixtime); default: the offset "
        "the file reveals, else UTC",
    )
    parser.set_defaults(handler=Handler("import_export"))


def add_api(subparsers: Subparsers) -> None:
    """Add ``api``."""
    parser = subparsers.add_parser("api", help="serve the HTTP API (reads, analytics, admin, live)")
    parser.add_argument("--host", help="listen address (default AALTOHUB_API_HOST)")
    parser.add_argument("--port", type=int, help="listen port (default AALTOHUB_API_PORT)")
    parser.set_defaults(handler=Handler("api"))


def add_health(subparsers: Subparsers) -> None:
    """Add ``health``."""
    parser = subparsers.add_parser(
        "health", help="check one service (exit 0 healthy, 1 not), for compose healthchecks"
    )
    parser.add_argument("service", choices=HEALTH_SERVICES)
    parser.add_argument(
        "--max-lag",
        type=int,
        default=DEFAULT_MAX_LAG,
        help=f"projector: events it may be behind the log (default {DEFAULT_MAX_LAG})",
    )
    parser.set_defaults(handler=Handler("health"))


# In the order ``aaltohub --help`` lists them.
COMMANDS: Final[tuple[Callable[[Subparsers], None], ...]] = (
    add_migrate,
    add_up,
    add_env,
    add_log,
    add_project,
    add_replay,
    add_analytics,
    add_ingest,
    add_login,
    add_import,
    add_api,
    add_health,
)
