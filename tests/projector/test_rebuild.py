"""Blue/green rebuilds while live events keep arriving."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import duckdb
import psycopg
import pytest

from eventlog import EventLog
from projector.duckdb.dataset import dataset_dir, read_current
from projector.duckdb.projection import DuckDBProjection
from projector.errors import RebuildError
from projector.postgres.projection import PostgresProjection
from projector.rebuild_duckdb import REPLACED, rebuild_duckdb
from projector.rebuild_postgres import REBUILD_LOCK_KEY, rebuild_postgres
from projector.runner import ProjectionRunner
from tests.factories import CHAN, deleted, edited
from tests.helpers import posted, wait_until
from tests.projector.conftest import content_hash, project_to_end, run_to_end


async def _produce(
    event_log: EventLog, start: int, stop: asyncio.Event, produced: list[int]
) -> None:
    i = start
    while not stop.is_set():
        batch = [posted(CHAN, i), posted(CHAN - 1, i), edited(CHAN, i, f"e{i}"), deleted(None, i)]
        results = await event_log.append_many(batch)
        produced.append(results[-1].seq)
        i += 1
        await asyncio.sleep(0.005)  # pacing of the producer, not a wait for a result


async def test_postgres_rebuild_swaps_in_without_a_gap(
    event_log: EventLog, migrated_url: str
) -> None:
    await event_log.append_many([posted(CHAN, i) for i in range(1, 3001)])
    live = PostgresProjection(database_url=migrated_url, codec=event_log.codec)
    runner = ProjectionRunner(live, log=event_log, batch_size=500, max_batch_wait_s=0.05)
    live_task = asyncio.create_task(runner.run())
    stop, produced = asyncio.Event(), [0]
    producer = asyncio.create_task(_produce(event_log, 5000, stop, produced))
    try:
        result = await rebuild_postgres(log_=event_log, database_url=migrated_url, batch_size=700)
        await wait_until(lambda: len(produced) > 3 and produced[-1] > result.seq, timeout=20)
        stop.set()
        await producer
        await runner.wait_for_seq(produced[-1], timeout_s=30)
    finally:
        stop.set()
        live_task.cancel()
        await asyncio.gather(live_task, producer, return_exceptions=True)
        await live.close()
    incremental = content_hash(migrated_url)
    with psycopg.connect(migrated_url) as conn:
        schemas = [
            r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 're%'")
        ]
        count = conn.execute("SELECT count(*) FROM messages").fetchone()
    assert schemas == []  # the build schema and the retired tables are gone
    assert count is not None and count[0] > 3000
    await rebuild_postgres(log_=event_log, database_url=migrated_url)
    assert content_hash(migrated_url) == incremental


async def _stay_ahead(
    event_log: EventLog, database_url: str, lead: int, stop: asyncio.Event
) -> None:
    """A producer that keeps the log at least ``lead`` events ahead of the rebuild's checkpoint, as
    busy groups do when they post as fast as a rebuild replays."""
    i = 100_000
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while not stop.is_set():
            rebuilt = 0
            schema = await (
                await conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname ~ '^rebuild_[0-9]{14}$'"
                )
            ).fetchone()
            if schema is not None:
                with contextlib.suppress(psycopg.Error):  # not created yet, or swapped meanwhile
                    row = await (
                        await conn.execute(
                            f"SELECT seq FROM {schema[0]}.projection_checkpoints "
                            "WHERE name = 'postgres'"
                        )
                    ).fetchone()
                    rebuilt = 0 if row is None else int(row[0])
            if (await event_log.info()).last_seq - rebuilt < lead:
                await event_log.append_many([posted(CHAN, i + k) for k in range(lead)])
                i += lead
            await asyncio.sleep(0.01)  # polling the rebuild's progress, not waiting for a result


async def test_postgres_rebuild_swaps_in_while_producers_outrun_its_replay(
    event_log: EventLog, migrated_url: str
) -> None:
    await event_log.append_many([posted(CHAN, i) for i in range(1, 201)])
    stop = asyncio.Event()
    producer = asyncio.create_task(_stay_ahead(event_log, migrated_url, 60, stop))
    try:
        result = await asyncio.wait_for(
            rebuild_postgres(log_=event_log, database_url=migrated_url, batch_size=10), 60
        )
    finally:
        stop.set()
        await asyncio.gather(producer, return_exceptions=True)
    head = (await event_log.info()).last_seq
    assert (
        200 <= result.seq < head
    )  # swapped in behind the head; the live projector applies the rest
    await project_to_end(event_log, migrated_url, batch_size=500)
    with psycopg.connect(migrated_url) as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (head,)


async def test_duckdb_rebuild_is_handed_to_the_live_writer(
    event_log: EventLog, tmp_path: Path
) -> None:
    await event_log.append_many([posted(CHAN, i) for i in range(1, 501)])
    path = tmp_path / "analytics.duckdb"
    live = DuckDBProjection(path=path, codec=event_log.codec, snapshot_interval_s=None)
    runner = ProjectionRunner(live, log=event_log, batch_size=100, max_batch_wait_s=0.05)
    live_task = asyncio.create_task(runner.run())
    stop, produced = asyncio.Event(), [0]
    producer = asyncio.create_task(_produce(event_log, 5000, stop, produced))
    try:
        result = await rebuild_duckdb(log_=event_log, path=path, batch_size=300)
        assert result.swapped == "handed to the live writer"
        await wait_until(lambda: len(produced) > 3 and produced[-1] > result.seq, timeout=20)
        stop.set()
        await producer
        await runner.wait_for_seq(produced[-1], timeout_s=30)
        await live.finish()
    finally:
        stop.set()
        live_task.cancel()
        await asyncio.gather(live_task, producer, return_exceptions=True)
        await live.close()
    with duckdb.connect(str(path), read_only=True) as con:
        seqs = [r[0] for r in con.execute("SELECT seq FROM events ORDER BY seq").fetchall()]
        messages = con.execute("SELECT count(*) FROM messages").fetchone()
    assert seqs == list(range(1, produced[-1] + 1))  # nothing missing, nothing twice
    assert messages is not None and messages[0] == 500 + 2 * (len(produced) - 1)


async def test_a_duckdb_rebuild_no_writer_held_is_published_by_the_projector(
    event_log: EventLog, tmp_path: Path
) -> None:
    await event_log.append_many([posted(CHAN, i) for i in range(1, 41)])
    path = tmp_path / "analytics.duckdb"
    live = await run_to_end(event_log, path)
    await live.open()
    try:
        await live.publish_now()
    finally:
        await live.close()
    before = read_current(dataset_dir(path))
    await event_log.append_many([posted(CHAN, i) for i in range(41, 51)])
    result = await rebuild_duckdb(log_=event_log, path=path, batch_size=20)
    assert result.swapped == REPLACED
    assert read_current(dataset_dir(path)) == before  # readers keep the old generation whole
    projection = DuckDBProjection(path=path, codec=event_log.codec, snapshot_interval_s=None)
    await projection.open()
    try:
        published = await projection.publish_now()
    finally:
        await projection.close()
    after = read_current(dataset_dir(path))
    assert before is not None and after is not None and published is not None
    assert published.full and after[1].generation != before[1].generation
    assert (before[1].seq, after[1].seq) == (40, 50)


async def test_postgres_rebuild_runs_alone_and_drops_what_dead_rebuilds_left(
    event_log: EventLog,
    migrated_url: str,
) -> None:
    await event_log.append_many([posted(CHAN, i) for i in range(1, 20)])
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA rebuild_20000101000000")
        conn.execute("CREATE TABLE rebuild_20000101000000.messages (x int)")
        conn.execute("SELECT pg_advisory_lock(%s)", (REBUILD_LOCK_KEY,))
        with pytest.raises(RebuildError, match="another Postgres rebuild"):
            await rebuild_postgres(log_=event_log, database_url=migrated_url)
        conn.execute("SELECT pg_advisory_unlock(%s)", (REBUILD_LOCK_KEY,))
        result = await rebuild_postgres(log_=event_log, database_url=migrated_url)
        schemas = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'rebuild%'"
        ).fetchall()
        count = conn.execute("SELECT count(*) FROM messages").fetchone()
    assert result.seq == 19
    assert schemas == []
    assert count == (19,)


async def test_postgres_rebuild_copies_what_later_migrations_made_of_the_live_tables(
    event_log: EventLog, migrated_url: str
) -> None:
    with psycopg.connect(migrated_url, autocommit=True) as conn:  # as a future migration would
        conn.execute("ALTER TABLE public.messages ADD COLUMN note text NOT NULL DEFAULT 'n'")
        conn.execute("CREATE INDEX messages_note_idx ON public.messages (note)")
    await event_log.append_many([posted(CHAN, 1), posted(CHAN, 2)])
    await rebuild_postgres(log_=event_log, database_url=migrated_url)
    with psycopg.connect(migrated_url) as conn:
        notes = conn.execute("SELECT message_id, note FROM messages ORDER BY 1").fetchall()
        index = conn.execute("SELECT to_regclass('public.messages_note_idx')").fetchone()
    assert notes == [(1, "n"), (2, "n")]
    assert index is not None and index[0] is not None


async def test_postgres_rebuild_keeps_the_unique_constraints_of_messages(
    event_log: EventLog, migrated_url: str
) -> None:
    # The bulk load builds the keys of messages after filling it, beside its other indexes.
    with psycopg.connect(migrated_url, autocommit=True) as conn:  # as a future migration would
        conn.execute("ALTER TABLE public.messages ADD CONSTRAINT messages_text_key UNIQUE (text)")
    await event_log.append_many([posted(CHAN, 1, text="one"), posted(CHAN, 2, text="two")])
    await rebuild_postgres(log_=event_log, database_url=migrated_url)
    with psycopg.connect(migrated_url) as conn:
        keys = conn.execute(
            "SELECT conname, contype FROM pg_constraint "
            "WHERE conrelid = 'public.messages'::regclass AND contype IN ('p', 'u') ORDER BY 1"
        ).fetchall()
    assert keys == [("messages_pkey", "p"), ("messages_text_key", "u")]


async def test_a_postgres_rebuild_whose_rows_break_a_key_dead_letters_the_event(
    event_log: EventLog, migrated_url: str
) -> None:
    # The key is built after the bulk load: its violation rolls the load back, and the replay batch
    # by batch bisects the offending event into a dead letter, as a live batch would.
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE public.messages ADD CONSTRAINT messages_text_key UNIQUE (text)")
    await event_log.append_many([posted(CHAN, 1, text="same"), posted(CHAN, 2, text="same")])
    result = await rebuild_postgres(log_=event_log, database_url=migrated_url)
    with psycopg.connect(migrated_url) as conn:
        messages = conn.execute("SELECT message_id FROM public.messages").fetchall()
        dead = conn.execute(
            "SELECT seq, error LIKE '%%UniqueViolation%%' FROM public.failed_messages"
        ).fetchall()
    assert result.seq == 2
    assert messages == [(1,)]
    assert dead == [(2, True)]
