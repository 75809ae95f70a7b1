"""The ``aaltohub analytics`` command prints a named query as a table (a file or the dataset)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aaltohub.cli import main
from eventlog import EventLog
from projector.duckdb.projection import DuckDBProjection
from tests.factories import CHAN, T0
from tests.helpers import posted
from tests.projector.conftest import run_to_end


async def test_analytics_prints_a_query_as_a_table(
    event_log: EventLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await event_log.append_many([posted(CHAN, i, date=T0) for i in range(1, 4)])
    path = tmp_path / "a.duckdb"
    await run_to_end(event_log, path)
    code = main(["analytics", "messages_per_day", "--file", str(path), "--chat", str(CHAN)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].split() == ["chat_id", "day", "messages"]
    assert out[2].split() == [str(CHAN), "2026-11-01", "3"]


def test_analytics_rejects_an_unknown_query(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analytics", "no_such_query"]) == 1
    assert "messages_per_day" in capsys.readouterr().out


async def test_analytics_reads_the_published_dataset(
    event_log: EventLog,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await event_log.append_many([posted(CHAN, i, date=T0) for i in range(1, 3)])
    path = tmp_path / "b.duckdb"
    await run_to_end(event_log, path)
    projection = DuckDBProjection(path=path, codec=event_log.codec, snapshot_interval_s=None)
    await projection.open()
    try:
        assert await projection.publish_now() is not None
    finally:
        await projection.close()
    monkeypatch.setenv("AALTOHUB_DUCKDB_PATH", str(path))
    code = main(["analytics", "messages_per_day"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[2].split() == [str(CHAN), "2026-11-01", "2"]
