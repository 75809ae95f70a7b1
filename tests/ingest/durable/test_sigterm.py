"""SIGTERM to a running ``aaltohub ingest`` (demo source) during a burst loses nothing.

Invariant: the demo writes the id of every event it submitted to a ledger file (flushed as the
source stops); after the process exits and anything it spooled has been drained, every ledger id
is in the log exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from aaltohub.embedded.nats_server import NatsServer
from eventlog import EventLog
from schemas.events import IngestStopped
from tests.helpers import wait_until
from tests.ingest.durable.helpers import make_sink, read_events

REPO = Path(__file__).resolve().parents[3]


def start_ingest(tmp_path: Path, nats_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "NATS_URL": nats_url,
        "AALTOHUB_DATA_DIR": str(tmp_path / "data"),
        "AALTOHUB_DEMO_RATE": "3000",
        "AALTOHUB_DEMO_GROUPS": "20",
        "AALTOHUB_DEMO_LEDGER": str(tmp_path / "ledger.txt"),
        "AALTOHUB_INGEST_ACK_TIMEOUT_S": "0.5",
        "AALTOHUB_INGEST_APPEND_DEADLINE_S": "1.5",
    }
    env.pop("TELEGRAM_API_ID", None)
    env.pop("TELEGRAM_API_HASH", None)
    log_file = open(tmp_path / "ingest.log", "wb")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "aaltohub", "ingest"],
            cwd=tmp_path,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    finally:
        log_file.close()


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


async def drain_spool(data_dir: Path, log: EventLog) -> None:
    sink = make_sink(data_dir, log)
    await sink.start()
    try:
        await wait_until(lambda: sink.status().spool_records == 0, timeout=30)
    finally:
        await sink.close()


async def test_sigterm_during_a_burst_loses_nothing(
    tmp_path: Path, nats_server: NatsServer, quick_log: EventLog
) -> None:
    proc = start_ingest(tmp_path, nats_server.url)
    try:

        def enough() -> bool:
            # The ledger, not the log: the demo writes an id to it only after the sink says the
            # event is durable, so the log runs ahead of it (by whole chunks on a loaded machine).
            ledger = tmp_path / "ledger.txt"
            return ledger.exists() and ledger.read_text().count("\n") >= 1500

        await wait_until(enough, timeout=60, interval=0.1)
        assert stop(proc) == 0, (tmp_path / "ingest.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    await drain_spool(tmp_path / "data", quick_log)
    ledger = (tmp_path / "ledger.txt").read_text().split()
    stored = [e.event_id for e in await read_events(quick_log)]
    assert len(ledger) >= 1500
    assert set(ledger) <= set(stored)
    assert len(stored) == len(set(stored))
    assert "stopping (4/5" in (tmp_path / "ingest.log").read_text()


async def test_sigterm_while_the_log_is_down_spools_and_nothing_is_lost(
    tmp_path: Path, nats_server: NatsServer, quick_log: EventLog
) -> None:
    proc = start_ingest(tmp_path, nats_server.url)
    try:

        async def some() -> bool:
            return (await quick_log.info()).messages >= 500

        await wait_until(some, timeout=60, interval=0.1)
        nats_server.stop()
        spool = tmp_path / "data" / "spool"
        await wait_until(lambda: any(p.stat().st_size > 0 for p in spool.glob("*.seg")), timeout=20)
        assert stop(proc) == 0, (tmp_path / "ingest.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    nats_server.start()
    await wait_until(lambda: quick_log.connected, timeout=20)
    await drain_spool(tmp_path / "data", quick_log)
    ledger = (tmp_path / "ledger.txt").read_text().split()
    events = await read_events(quick_log)
    stored = [e.event_id for e in events]
    assert set(ledger) <= set(stored)
    assert len(stored) == len(set(stored))
    assert isinstance(events[-1], IngestStopped)
