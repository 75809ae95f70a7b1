"""The DuckDB projection: fold rules, analytics queries, the published dataset for readers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from eventlog import EventLog, RawRecord
from projector.duckdb.dataset import connect_dataset, dataset_dir, read_current
from projector.duckdb.projection import DuckDBProjection
from projector.runner import ProjectionRunner
from schemas.codec import Codec
from schemas.duckdb.queries import ANALYTICS_QUERIES, PARAMETERS
from schemas.events import Event
from tests.factories import CHAN, T0, deleted, edited
from tests.helpers import posted, wait_until
from tests.projector.conftest import run_to_end


def rows(path: Path, query: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return [tuple(r) for r in con.execute(query).fetchall()]


async def test_messages_fold_follows_the_merge_rules(event_log: EventLog, tmp_path: Path) -> None:
    await event_log.append_many(
        [
            edited(CHAN, 1, "v2"),
            posted(CHAN, 1, text="v1", date=T0),
            deleted(CHAN, 2),
            posted(CHAN, 2, text="gone"),
            posted(-55, 3, text="basic"),
            deleted(None, 3),
        ]
    )
    path = tmp_path / "a.duckdb"
    await run_to_end(event_log, path, batch_size=2)
    got = rows(
        path, "SELECT chat_id, message_id, text, edit_count, is_deleted FROM messages ORDER BY 1, 2"
    )
    assert got == [
        (CHAN, 1, "v2", 1, False),
        (CHAN, 2, "gone", 0, True),
        (-55, 3, "basic", 0, True),
    ]


async def test_incremental_equals_replayed(event_log: EventLog, tmp_path: Path) -> None:
    events: list[Event] = [
        posted(CHAN - i % 3, i, text=f"m{i}", date=T0 + timedelta(minutes=i)) for i in range(1, 60)
    ]
    events += [edited(CHAN - 1, 1, "e"), deleted(CHAN, 3), deleted(None, 4)]
    await event_log.append_many(events[:30])
    path_inc = tmp_path / "inc.duckdb"
    await run_to_end(event_log, path_inc, batch_size=4)
    await event_log.append_many(events[30:])
    await run_to_end(event_log, path_inc, batch_size=5)
    path_full = tmp_path / "full.duckdb"
    await run_to_end(event_log, path_full, batch_size=5000)
    query = "SELECT * FROM messages ORDER BY chat_id, message_id"
    assert rows(path_inc, query) == rows(path_full, query)
    assert rows(path_inc, "SELECT * FROM events ORDER BY seq") == rows(
        path_full, "SELECT * FROM events ORDER BY seq"
    )


async def test_batches_sharing_a_transaction_resume_from_the_last_commit(
    event_log: EventLog, tmp_path: Path
) -> None:
    events: list[Event] = [
        posted(CHAN - i % 4, i, text=f"m{i}", date=T0 + timedelta(minutes=i)) for i in range(1, 701)
    ]
    events += [edited(CHAN, 4, "e"), deleted(CHAN - 1, 5), deleted(None, 6)]
    await event_log.append_many(events)
    last = (await event_log.info()).last_seq
    path = tmp_path / "bulk.duckdb"
    bulk = DuckDBProjection(
        path=path,
        codec=event_log.codec,
        snapshot_interval_s=None,
        fold_interval_s=3600,
        commit_rows=450,
    )
    assert await bulk.open() == 0
    applied = 0
    async for batch in event_log.read_raw(1, to_seq=600, batch_size=100):
        await bulk.apply(batch)
        applied = batch[-1].seq
    assert applied == 600 and bulk.seq == 600
    await bulk.close()  # the sixth batch was not committed yet: it rolls back
    assert rows(path, "SELECT seq FROM projection_checkpoint") == [(500,)]
    assert rows(path, "SELECT count(*), max(seq) FROM events") == [(500, 500)]
    runner = ProjectionRunner(bulk, log=event_log, batch_size=100)
    try:
        await runner.run(until_end=True)  # resumes at 501; the last batch folds and commits
        await bulk.finish()
    finally:
        await bulk.close()
    assert rows(path, "SELECT seq, messages_seq FROM projection_checkpoint") == [(last, last)]
    reference = tmp_path / "reference.duckdb"
    await run_to_end(event_log, reference, batch_size=5000)
    for query in (
        "SELECT * FROM messages ORDER BY chat_id, message_id",
        "SELECT * FROM events ORDER BY seq",
    ):
        assert rows(path, query) == rows(reference, query)


@pytest.mark.parametrize("name", sorted(ANALYTICS_QUERIES))
async def test_analytics_query_runs_with_and_without_filters(
    event_log: EventLog, tmp_path: Path, name: str
) -> None:
    reply = posted(CHAN, 2, text="re", date=T0 + timedelta(minutes=3))
    reply = reply.__class__(
        **{
            **{f: getattr(reply, f) for f in reply.__struct_fields__},
            "message": reply.message.__class__(
                **{
                    **{f: getattr(reply.message, f) for f in reply.message.__struct_fields__},
                    "reply_to": __import__("schemas.events", fromlist=["ReplyTo"]).ReplyTo(
                        message_id=1
                    ),
                }
            ),
        }
    )
    await event_log.append_many([posted(CHAN, 1, date=T0), reply])
    path = tmp_path / "q.duckdb"
    await run_to_end(event_log, path)
    sql = ANALYTICS_QUERIES[name].sql
    with duckdb.connect(str(path), read_only=True) as con:
        everything = con.execute(sql, dict.fromkeys(PARAMETERS)).fetchall()
        filtered = con.execute(
            sql, {"chat_id": 42, "since": T0, "until": T0 + timedelta(days=1)}
        ).fetchall()
    assert everything and not filtered


async def test_reader_sees_a_consistent_snapshot_while_the_writer_goes_on(
    event_log: EventLog, tmp_path: Path
) -> None:
    path = tmp_path / "live.duckdb"
    root = dataset_dir(path)
    projection = DuckDBProjection(path=path, codec=event_log.codec, snapshot_interval_s=0.2)
    runner = ProjectionRunner(projection, log=event_log, batch_size=50, max_batch_wait_s=0.05)
    task = asyncio.create_task(runner.run())
    try:
        await event_log.append_many([posted(CHAN, i) for i in range(1, 101)])
        await wait_until(lambda: published_seq(root) == 100, timeout=20)
        opened = connect_dataset(root)
        assert opened is not None
        reader = opened[0]
        first = reader.execute("SELECT count(*), max(seq) FROM events").fetchone()
        await event_log.append_many([posted(CHAN, i) for i in range(101, 301)])
        await wait_until(lambda: published_seq(root) == 300, timeout=20)
        again = reader.execute("SELECT count(*) FROM messages").fetchone()
        latest = connect_dataset(root)
        assert latest is not None
        now = latest[0].execute("SELECT count(*) FROM messages").fetchone()
        assert (first, again, now) == ((100, 100), (100,), (300,))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await projection.close()


def published_seq(root: Path) -> int | None:
    """The seq of the current manifest under ``root``."""
    current = read_current(root)
    return None if current is None else current[1].seq


async def test_a_file_written_before_a_new_column_gets_it_and_keeps_its_rows(
    event_log: EventLog, tmp_path: Path
) -> None:
    path = tmp_path / "old.duckdb"
    await event_log.append_many([posted(CHAN, 1, text="old")])
    await run_to_end(event_log, path)
    with duckdb.connect(str(path)) as con:  # the file as a version without the column left it
        con.execute("ALTER TABLE events DROP COLUMN discussion_chat_id")
        con.execute("ALTER TABLE messages DROP COLUMN discussion_chat_id")
    await event_log.append_many([posted(CHAN, 2, text="new")])
    await run_to_end(event_log, path)
    assert rows(path, "SELECT message_id, text, discussion_chat_id FROM messages ORDER BY 1") == [
        (1, "old", None),
        (2, "new", None),
    ]


@pytest.mark.parametrize("helper_started", [True, False], ids=["helper-started", "helper-starting"])
async def test_a_load_through_the_helper_gives_the_tables_of_batch_by_batch(
    tmp_path: Path, helper_started: bool
) -> None:
    codec = Codec()
    events: list[Event] = [
        posted(CHAN - i % 3, i, text=f"m{i} ✓", date=T0 + timedelta(minutes=i))
        for i in range(1, 301)
    ]
    events += [edited(CHAN, 3, "e"), deleted(CHAN - 1, 4), deleted(None, 5), edited(CHAN, 3, "f")]
    records = [RawRecord(s, f"tg.test.{s}", codec.encode(e)) for s, e in enumerate(events, 1)]
    records[41] = RawRecord(42, "tg.test.42", b'{"kind": "message.posted", "oops"')

    async def in_batches(size: int) -> AsyncIterator[list[RawRecord]]:
        for i in range(0, len(records), size):
            yield records[i : i + size]

    loaded = DuckDBProjection(
        path=tmp_path / "load.duckdb",
        codec=codec,
        snapshot_interval_s=None,
        fold_interval_s=3600,
        commit_rows=150,
        helper_process=True,
    )
    await loaded.open()
    if helper_started:  # else the first batches are prepared here while the helper starts
        await wait_until(lambda: loaded.helper_ready, timeout=60)
    try:  # inserts of 90 rows from batches of 30, commits every 150+
        assert await loaded.load(in_batches(30), insert_rows=90) == len(records)
    finally:
        await loaded.close()
    live = DuckDBProjection(path=tmp_path / "live.duckdb", codec=codec, snapshot_interval_s=None)
    await live.open()
    try:
        async for batch in in_batches(50):
            await live.apply(batch, caught_up=True)
    finally:
        await live.close()
    for query in (
        "SELECT * FROM messages ORDER BY chat_id, message_id",
        "SELECT * FROM events ORDER BY seq",
        "SELECT seq, messages_seq FROM projection_checkpoint",
    ):
        assert rows(tmp_path / "load.duckdb", query) == rows(tmp_path / "live.duckdb", query)
    assert rows(tmp_path / "load.duckdb", "SELECT count(*) FROM events WHERE seq = 42") == [(0,)]
