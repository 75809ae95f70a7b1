"""The published Parquet dataset: each manifest shows the projection as of its seq, a publish writes
what is new, compaction keeps that true, and as-of queries give the state at any seq."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import duckdb

from projector.duckdb.dataset import DatasetPublisher, Published, connect_dataset, read_current
from projector.duckdb.projection import DuckDBProjection
from schemas.codec import Codec
from schemas.events import AnyEvent
from tests.contract.sequences import raw_records
from tests.factories import CHAN, T0, deleted, edited
from tests.helpers import posted

CODEC = Codec()


def round_events(n: int) -> list[AnyEvent]:
    """Round ``n``: new posts over several chats, days and months, edits and a delete of older ones
    (the edited message keeps its date, as Telegram's do: ``tests.factories.edited`` dates at T0)."""
    events: list[AnyEvent] = [
        posted(
            CHAN - i % 3,
            100 * n + i,
            text=f"m{n}.{i}",
            date=T0 + timedelta(days=9 * n + i) if i else T0,
        )
        for i in range(5)
    ]
    if n:
        events += [edited(CHAN, 100 * (n - 1), f"e{n}", minutes=n), deleted(CHAN - 1, 100 * n - 99)]
    return events


async def project(path: Path, events: list[AnyEvent], first_seq: int) -> None:
    projection = DuckDBProjection(path=path, codec=CODEC, snapshot_interval_s=None)
    await projection.open()
    try:
        records = raw_records(CODEC, events, first_seq=first_seq)
        await projection.apply(records, caught_up=True, prepared=projection.prepare(records))
        await projection.finish()
    finally:
        await projection.close()


def publish(path: Path, publisher: DatasetPublisher, seq: int) -> Published:
    with duckdb.connect(str(path)) as con:
        source = con.execute("SELECT file_id FROM dataset_source").fetchone()
        assert source is not None
        published = publisher.publish(con, seq, str(source[0]))
    assert published is not None
    return published


def table(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[object, ...]]:
    order = "seq" if name == "events" else "chat_id, id_scope, message_id"
    return [tuple(r) for r in con.execute(f"SELECT * FROM {name} ORDER BY {order}").fetchall()]


def test_every_publish_shows_the_table_as_of_its_seq(tmp_path: Path) -> None:
    path, root = tmp_path / "a.duckdb", tmp_path / "snapshots"
    # Tiny tiers and thresholds: merges and partition rewrites happen within a few rounds.
    publisher = DatasetPublisher(root, fanout=2, fold_in_rows=8, grace_s=0)
    seq = 0
    for n in range(10):
        events = round_events(n)
        asyncio.run(project(path, events, seq + 1))
        seq += len(events)
        publish(path, publisher, seq)
        opened = connect_dataset(root)
        assert opened is not None
        with duckdb.connect(str(path), read_only=True) as con:
            for name in ("events", "messages"):
                assert table(opened[0], name) == table(con, name), f"round {n}: {name}"
    current = read_current(root)
    assert current is not None
    manifest = current[1]
    assert all((root / f.path).exists() for f in (*manifest.events, *manifest.messages))
    assert max(f.level for f in manifest.events) >= 1  # merged along the way


def test_a_publish_writes_only_what_is_new(tmp_path: Path) -> None:
    path, root = tmp_path / "b.duckdb", tmp_path / "snapshots"
    publisher = DatasetPublisher(root)
    events: list[AnyEvent] = [
        posted(CHAN - i % 20, i, text=f"{i} " * 60, date=T0 + timedelta(hours=i))
        for i in range(3000)
    ]
    asyncio.run(project(path, events, 1))
    first = publish(path, publisher, 3000)
    new: list[AnyEvent] = [posted(CHAN, 5000 + i, text=f"{i}! " * 60) for i in range(300)]
    asyncio.run(project(path, new, 3001))
    second = publish(path, publisher, 3300)
    new_bytes = sum(len(r.data) for r in raw_records(CODEC, new, first_seq=3001))
    assert (first.full, second.full) == (True, False)
    assert second.bytes_written < 2 * new_bytes
    assert second.bytes_written * 5 < first.bytes_written


def test_a_new_source_file_is_published_whole_in_a_new_generation(tmp_path: Path) -> None:
    path, root = tmp_path / "c.duckdb", tmp_path / "snapshots"
    asyncio.run(project(path, round_events(0), 1))
    publisher = DatasetPublisher(root)
    publish(path, publisher, 5)
    before = read_current(root)
    with duckdb.connect(str(path)) as con:
        again = publisher.publish(con, 5, "a rebuilt file")
    after = read_current(root)
    assert before is not None and after is not None and again is not None
    assert again.full and after[1].generation != before[1].generation
    assert [r.path for r in after[1].retired] == [before[1].generation]


def test_as_of_queries_give_the_state_at_a_seq_or_a_time(tmp_path: Path) -> None:
    path, root = tmp_path / "d.duckdb", tmp_path / "snapshots"
    events = round_events(0) + round_events(1) + round_events(2)
    asyncio.run(project(path, events, 1))
    publish(path, DatasetPublisher(root), len(events))
    prefix = tmp_path / "prefix.duckdb"
    asyncio.run(project(prefix, events[:8], 1))
    opened = connect_dataset(root)
    assert opened is not None
    con = opened[0]
    as_of = [
        tuple(r)
        for r in con.execute(
            "SELECT * FROM messages_as_of(8) ORDER BY chat_id, id_scope, message_id"
        ).fetchall()
    ]
    cut = max(e.observed_at for e in events[:8])
    at_time = con.execute(
        "SELECT count(*) FROM messages_at($t) WHERE observed_at > $t", {"t": cut}
    ).fetchone()
    with duckdb.connect(str(prefix), read_only=True) as expected:
        assert as_of == table(expected, "messages")
    assert at_time == (0,)
