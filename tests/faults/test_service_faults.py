"""kill -9 of the projector and of the API while the demo appends (ingest, projector and API as
separate processes, as compose runs them): nothing the demo recorded as durable is lost or stored
twice, both come back, and afterwards the live projections (Postgres and the published DuckDB dataset)
equal a fresh replay of the log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from aaltohub.embedded.nats_server import NatsServer
from aaltohub.embedded.postgres import PostgresServer
from aaltohub.embedded.process import free_port
from eventlog import EventLog
from projector.duckdb.dataset import dataset_dir, read_current
from tests.faults.conftest import REPO, Ingest, tally
from tests.helpers import wait_until
from tests.projector.conftest import assert_replay_equals_live

pytestmark = pytest.mark.slow


class Child:
    """``aaltohub <command>`` as a child process, restartable, killed on ``close``."""

    def __init__(self, command: str, env: dict[str, str], out: Path) -> None:
        self.command, self.env, self.out = command, env, out
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.out, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "aaltohub", self.command],
                cwd=self.out.parent,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def checkpoint(database_url: str, name: str = "postgres") -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT seq FROM projection_checkpoints WHERE name = %s", (name,)
        ).fetchone()
    return int(row[0]) if row else 0


async def healthy(url: str) -> bool:
    async with httpx.AsyncClient(timeout=3) as client:
        try:
            response = await client.get(f"{url}/health")
        except httpx.TransportError:
            return False
    return response.status_code == 200 and response.json().get("status") == "ok"


async def test_kill_9_of_projector_and_api_loses_nothing_and_projections_equal_a_replay(
    tmp_path: Path,
    nats: NatsServer,
    log: EventLog,
    migrated_db: str,
    postgres_server: PostgresServer,
) -> None:
    ingest = Ingest(tmp_path / "data", nats.url, tmp_path / "ledger.txt")
    duck = tmp_path / "analytics" / "live.duckdb"
    api_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AALTOHUB_", "TELEGRAM_"))},
        "PYTHONPATH": str(REPO),
        "NATS_URL": nats.url,
        "DATABASE_URL": migrated_db,
        "AALTOHUB_DATA_DIR": str(tmp_path / "data"),
        "AALTOHUB_DUCKDB_PATH": str(duck),
        "AALTOHUB_PROJECTIONS": "postgres,duckdb",
        "AALTOHUB_DUCKDB_SNAPSHOT_INTERVAL_S": "1",
        "AALTOHUB_INGEST_METRICS_PORT": "0",
        "AALTOHUB_PROJECTOR_METRICS_PORT": "0",
        "AALTOHUB_API_PORT": str(api_port),
    }
    projector = Child("project", env, tmp_path / "projector.log")
    api = Child("api", env, tmp_path / "api.log")
    api_url = f"http://127.0.0.1:{api_port}"
    try:
        ingest.start()
        projector.start()
        api.start()
        await wait_until(lambda: ingest.ledger_lines() >= 200, timeout=60)
        await wait_until(lambda: checkpoint(migrated_db) > 100, timeout=60)
        await wait_until(lambda: healthy(api_url), timeout=60)

        projector.kill()
        at_kill = ingest.ledger_lines()
        await wait_until(lambda: ingest.ledger_lines() >= at_kill + 200, timeout=60)
        projector.start()
        api.kill()
        api.start()
        await wait_until(lambda: healthy(api_url), timeout=60)

        assert ingest.terminate() == 0, ingest.output()[-3000:]
        head = (await log.info()).last_seq
        await wait_until(lambda: checkpoint(migrated_db) == head, timeout=120)
        await wait_until(
            lambda: (s := read_current(dataset_dir(duck))) is not None and s[1].seq == head,
            timeout=120,
        )
    finally:
        for child in (ingest, projector, api):
            child.close()
    row = await tally("kill -9 projector, kill -9 api", log, ingest.ledger)
    assert (row.lost, row.duplicated) == (0, 0), row

    await assert_replay_equals_live(
        log,
        postgres_server=postgres_server,
        live_database_url=migrated_db,
        live_duckdb=duck,
        tmp_path=tmp_path,
    )
