"""The ``aaltohub`` command line: help without heavy imports, each command to its implementation."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from aaltohub.cli import build_parser, load_handler
from aaltohub.embedded.nats_server import NatsServer
from aaltohub.service_projector import KNOWN_PROJECTIONS
from aaltohub.subcommands.arguments import PROJECTIONS
from eventlog import EventLog
from tests.aaltohub.upproc import REPO_ROOT, cli_env, run_cli
from tests.helpers import posted

# What no parser or help may load (docs/decisions/048-cli-imports-on-demand.md).
HEAVY = (
    "telethon",
    "fastapi",
    "uvicorn",
    "supabase",
    "duckdb",
    "pyarrow",
    "psycopg",
    "nats",
    "cryptography",
    "api",
    "ingest",
    "projector",
    "eventlog",
)

# Build the parser, print the help of every command, report which HEAVY packages got loaded.
_HELP_EVERYWHERE = """
import argparse, contextlib, io, json, sys
from aaltohub.cli import build_parser, main

def paths(parser, prefix):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield [*prefix, name]
                yield from paths(sub, [*prefix, name])

shown = 0
for path in [[], *paths(build_parser(), [])]:
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
        main([*path, "--help"])
    shown += out.getvalue().startswith("usage: aaltohub")
heavy = json.loads(sys.argv[1])
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(heavy))
print(json.dumps({"shown": shown, "loaded": loaded}))
"""


def _parsers(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every command and command group (``log`` and ``log tail``) with its parser."""
    found: dict[tuple[str, ...], argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[(*prefix, name)] = sub
                found.update(_parsers(sub, (*prefix, name)))
    return found


def test_parser_and_every_help_load_no_heavy_package(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _HELP_EVERYWHERE, json.dumps(HEAVY)],
        env=cli_env(tmp_path / "var"),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(done.stdout)
    assert report["shown"] == 1 + len(_parsers(build_parser()))  # `aaltohub --help` and each
    assert report["loaded"] == []


def test_each_command_is_routed_to_its_implementation() -> None:
    routed = {
        " ".join(path): load_handler(sub.get_default("handler"))
        for path, sub in _parsers(build_parser()).items()
        if sub.get_default("handler") is not None  # not a group such as `log`
    }
    assert {path: f"{f.__module__}.{f.__name__}" for path, f in routed.items()} == {
        "migrate": "aaltohub.subcommands.migrate.run",
        "up": "aaltohub.subcommands.up.run",
        "env": "aaltohub.subcommands.env.run",
        "log info": "aaltohub.subcommands.log.run_info",
        "log tail": "aaltohub.subcommands.log.run_tail",
        "log init": "aaltohub.subcommands.log.run_init",
        "project": "aaltohub.subcommands.project.run_project",
        "retry": "aaltohub.subcommands.project.run_retry",
        "replay": "aaltohub.subcommands.replay.run",
        "analytics": "aaltohub.subcommands.analytics.run",
        "ingest": "aaltohub.subcommands.ingest.run",
        "login": "aaltohub.subcommands.login.run",
        "import": "aaltohub.subcommands.import_export.run",
        "api": "aaltohub.subcommands.api.run",
        "health": "aaltohub.subcommands.health.run",
    }


def test_project_offers_exactly_the_projections_the_projector_builds() -> None:
    assert PROJECTIONS == KNOWN_PROJECTIONS


def test_a_bad_setting_is_one_line_naming_it_and_exit_2(tmp_path: Path) -> None:
    done = run_cli(tmp_path / "var", "health", "api", AALTOHUB_API_PORT="not-a-port")
    assert done.returncode == 2
    assert done.stderr.startswith("aaltohub health: AALTOHUB_API_PORT: ")
    assert done.stderr.count("\n") == 1 and "not-a-port" not in done.stderr and not done.stdout


def test_retry_without_a_running_stack_says_so(tmp_path: Path) -> None:
    done = run_cli(tmp_path / "var", "retry", "--all")
    assert done.returncode == 1
    assert done.stdout.startswith("aaltohub retry: no running `aaltohub up` for ")


def test_login_generate_key_prints_a_master_key_entry(tmp_path: Path) -> None:
    done = run_cli(tmp_path / "var", "login", "--generate-key")
    assert done.returncode == 0
    key_id, _, key = done.stdout.strip().partition(":")
    assert key_id == "k1" and len(key) == 44  # 32 bytes, base64


# Run one command in this interpreter, then report its exit code and which of the packages named in
# the second argument it loaded.
_RUN_AND_REPORT = """
import json, sys
from aaltohub.cli import main
code = main(json.loads(sys.argv[1]))
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[2])))
print(json.dumps({"code": code, "loaded": loaded}))
"""


def _run_and_report(
    command: list[str], watched: list[str], env: dict[str, str], cwd: Path, timeout_s: float
) -> dict[str, object]:
    """``aaltohub <command>`` in a fresh interpreter: its report (exit code, which of ``watched``
    it loaded), what it printed before the report and its stderr."""
    done = subprocess.run(
        [sys.executable, "-c", _RUN_AND_REPORT, json.dumps(command), json.dumps(watched)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    *printed, last = done.stdout.splitlines() or [""]
    report: dict[str, object] = json.loads(last) if last.startswith("{") else {}
    return {**report, "printed": "\n".join(printed), "stderr": done.stderr}


async def _replay(
    projection: str, nats_url: str, database_url: str, tmp_path: Path
) -> dict[str, object]:
    """``aaltohub replay --projection <projection>`` in a fresh interpreter."""
    env = cli_env(tmp_path / "var", NATS_URL=nats_url, DATABASE_URL=database_url)
    command = ["replay", "--projection", projection]
    return await asyncio.to_thread(
        _run_and_report, command, ["duckdb", "pyarrow"], env, tmp_path, 120
    )


async def test_a_postgres_replay_loads_neither_duckdb_nor_arrow(
    nats_server: NatsServer, event_log: EventLog, migrated_db: str, tmp_path: Path
) -> None:
    # event_log: the stream exists (the operator created it); one event to rebuild.
    await event_log.append_many([posted(-1001, 1)])
    report = await _replay("postgres", nats_server.url, migrated_db, tmp_path)
    assert report["code"] == 0 and "postgres: rebuilt to seq 1" in str(report["printed"]), report
    assert report["loaded"] == []


async def test_a_duckdb_replay_rebuilds_the_file(
    nats_server: NatsServer, event_log: EventLog, tmp_path: Path
) -> None:
    await event_log.append_many([posted(-1001, 1)])
    report = await _replay("duckdb", nats_server.url, "", tmp_path)
    assert report["code"] == 0 and "duckdb: rebuilt to seq 1" in str(report["printed"]), report


@pytest.mark.parametrize("service", ["api", "ingest"])
def test_the_frequent_health_checks_load_no_client_library(service: str, tmp_path: Path) -> None:
    # Compose runs them every 10-30 s in each container; nothing listens here, so each is unhealthy.
    # The package ``ingest`` itself is light (settings parse MASTER_KEY with ingest.telegram.master_key).
    watched = [m for m in HEAVY if m != "ingest"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = str(s.getsockname()[1])  # closed again: nothing answers there
    env = cli_env(
        tmp_path / "var", AALTOHUB_API_PORT=free_port, AALTOHUB_INGEST_METRICS_PORT=free_port
    )
    report = _run_and_report(["health", service], watched, env, tmp_path, 60)
    assert str(report["printed"]).startswith(f"{service} unhealthy: no answer from "), report
    assert report["code"] == 1 and report["loaded"] == []
