"""Faults around ingest, each accounted for with the demo's ledger (see conftest): a stalled log
with a kill -9 of ingest, kill -9 of ingest, kill -9 of nats-server, a full disk."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from aaltohub.embedded.nats_server import NatsServer
from eventlog import EventLog
from tests.faults.conftest import Ingest, tally
from tests.helpers import wait_until
from tests.ingest.durable.helpers import fill_disk

pytestmark = pytest.mark.slow


async def grows(ingest: Ingest, by: int, *, timeout: float = 30) -> None:
    """Wait until ``by`` more events were recorded durable."""
    start = ingest.ledger_lines()
    await wait_until(lambda: ingest.ledger_lines() >= start + by, timeout=timeout)


async def finish(ingest: Ingest) -> None:
    """Run ingest (again) until it made progress with the log back, then stop it with SIGTERM."""
    if ingest.proc is None or ingest.proc.poll() is not None:
        ingest.start()
    await grows(ingest, 100)
    assert ingest.terminate() == 0, ingest.output()[-3000:]
    assert not list((ingest.data_dir / "spool").glob("*.seg")), "the spool was not drained"


def stall(server: NatsServer, sig: int) -> None:
    assert server.process is not None
    server.process.send_signal(sig)


async def test_stall_then_kill_9_of_ingest_loses_nothing(
    nats: NatsServer, log: EventLog, ingest: Ingest
) -> None:
    ingest.start()
    await grows(ingest, 200)
    stall(nats, signal.SIGSTOP)
    try:
        await grows(ingest, 150)  # durable during the stall: in the spool, not in memory
        ingest.kill()
    finally:
        stall(nats, signal.SIGCONT)
    await finish(ingest)
    row = await tally("NATS stalled + kill -9 ingest", log, ingest.ledger)
    assert (row.lost, row.duplicated) == (0, 0), row


async def test_kill_9_of_ingest_loses_nothing(
    nats: NatsServer, log: EventLog, ingest: Ingest
) -> None:
    ingest.start()
    await grows(ingest, 300)
    ingest.kill()
    await finish(ingest)
    row = await tally("kill -9 ingest", log, ingest.ledger)
    assert (row.lost, row.duplicated) == (0, 0), row


async def test_kill_9_of_nats_server_loses_nothing(
    nats: NatsServer, log: EventLog, ingest: Ingest
) -> None:
    ingest.start()
    await grows(ingest, 200)
    nats.kill()
    await grows(ingest, 150)  # spooled while the server is gone
    nats.start()  # same port, same store
    await finish(ingest)
    row = await tally("kill -9 nats-server", log, ingest.ledger)
    assert (row.lost, row.duplicated) == (0, 0), row


async def test_full_disk_pauses_and_sigterm_exits_cleanly(
    tmp_path: Path, nats: NatsServer, log: EventLog, small_disk: Path
) -> None:
    ingest = Ingest(small_disk / "data", nats.url, tmp_path / "ledger.txt")
    ingest.data_dir.parent.mkdir(exist_ok=True)
    try:
        ingest.start()
        await grows(ingest, 200)
        stall(nats, signal.SIGSTOP)
        try:
            await grows(ingest, 100)  # spooling
            filler = fill_disk(small_disk)
            await wait_until(lambda: "intake paused" in ingest.output(), timeout=20)
            assert ingest.terminate() == 0, ingest.output()[-3000:]
        finally:
            stall(nats, signal.SIGCONT)
        filler.unlink()
        await finish(ingest)
    finally:
        ingest.close()
    row = await tally("full disk (+ NATS stalled, SIGTERM)", log, ingest.ledger)
    assert (row.lost, row.duplicated) == (0, 0), row
