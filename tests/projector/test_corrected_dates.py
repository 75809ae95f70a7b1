"""A re-import with the right ``--tz`` corrects the dates an earlier import read in a guessed zone
(docs/decisions/041-corrected-export-dates.md): Postgres, DuckDB and the published dataset show
the corrected dates, a correction is not an edit, a third import appends nothing, and the live
tables equal a replay."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import psycopg

from aaltohub.embedded.nats_server import NatsServer
from eventlog import EventLog
from ingest.export import ExportImporter, ImportProgress
from projector.duckdb.dataset import DatasetPublisher, connect_dataset
from projector.rebuild_postgres import rebuild_postgres
from schemas import ids
from schemas.events import MessagePosted, MessageSnapshot
from tests.helpers import publish_raw
from tests.ingest.export.exports import single_chat, write
from tests.ingest.export.log_sink import LogSink
from tests.projector.conftest import project_to_end, run_to_end, table_rows

CHAT = -1001730156619
HELSINKI = ZoneInfo("Europe/Helsinki")


def old(mid: int, date: str, **fields: Any) -> dict[str, Any]:
    """A message of an export written before ``date_unixtime`` existed (local times)."""
    return {"id": mid, "type": "message", "date": date, "from": "Bob", "text": f"m{mid}", **fields}


MESSAGES = [
    old(1, "2018-02-01T10:00:00"),
    # Just after midnight in Helsinki on 1 March: still February in UTC (it changes month).
    old(2, "2018-03-01T00:30:00"),
    old(3, "2018-02-02T10:00:00", edited="2018-02-02T12:00:00"),
]
# What Telegram stored: the local times above in Helsinki (UTC+2 in winter).
TRUE_DATES = {
    1: datetime(2018, 2, 1, 8, 0, tzinfo=UTC),
    2: datetime(2018, 2, 28, 22, 30, tzinfo=UTC),
    3: datetime(2018, 2, 2, 8, 0, tzinfo=UTC),
}


async def _import(log: EventLog, path: Path, **kw: Any) -> ImportProgress:
    return await ExportImporter(log=log, sink=LogSink(log), account="main", **kw).run(path)


def _pg(database_url: str) -> dict[int, tuple[object, ...]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT message_id, date, edit_date, edit_count, date_rank FROM messages "
            "WHERE chat_id = %s",
            (CHAT,),
        ).fetchall()
    return {int(r[0]): tuple(r[1:]) for r in rows}


def _duck(con: duckdb.DuckDBPyConnection) -> dict[int, tuple[object, ...]]:
    rows = con.execute(
        "SELECT message_id, date, edit_date, edit_count, date_rank FROM messages"
    ).fetchall()
    return {int(r[0]): tuple(r[1:]) for r in rows}


def _publish(path: Path, root: Path, seq: int) -> None:
    # fold_in_rows=0: every publish writes the touched months again (the month a message left too).
    with duckdb.connect(str(path)) as con:
        source = con.execute("SELECT file_id FROM dataset_source").fetchone()
        assert source is not None
        DatasetPublisher(root, fold_in_rows=0).publish(con, seq, str(source[0]))


async def test_a_reimport_in_the_right_zone_corrects_every_projection(
    event_log: EventLog, migrated_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path / "result.json", single_chat(MESSAGES))
    duck, root = tmp_path / "live.duckdb", tmp_path / "snapshots"

    first = await _import(event_log, path)  # no evidence in the file: read as UTC
    assert first.imported == 3
    await project_to_end(event_log, migrated_url, batch_size=1)
    await run_to_end(event_log, duck, batch_size=1)
    _publish(duck, root, (await event_log.info()).last_seq)
    assert _pg(migrated_url)[2][0] == datetime(2018, 3, 1, 0, 30, tzinfo=UTC)

    second = await _import(event_log, path, tz=HELSINKI)
    assert (second.redated, second.imported, second.already_present) == (3, 3, 0)
    assert any("stored again with these dates" in w for w in second.warnings)
    await project_to_end(event_log, migrated_url, batch_size=1)
    await run_to_end(event_log, duck, batch_size=1)
    last = (await event_log.info()).last_seq
    _publish(duck, root, last)

    edited = datetime(2018, 2, 2, 10, 0, tzinfo=UTC)
    expected = {
        1: (TRUE_DATES[1], None, 0, 1),
        2: (TRUE_DATES[2], None, 0, 1),
        3: (TRUE_DATES[3], edited, 1, 1),  # the correction is not a second edit
    }
    assert _pg(migrated_url) == expected
    with duckdb.connect(str(duck), read_only=True) as con:
        assert _duck(con) == expected
    opened = connect_dataset(root)
    assert opened is not None
    with opened[0] as con:  # each message once, message 2 in February only
        assert _duck(con) == expected
        assert con.execute("SELECT count(*) FROM messages").fetchone() == (3,)
    assert table_rows(migrated_url, "message_versions") == []
    with psycopg.connect(migrated_url) as conn:
        group = conn.execute(
            "SELECT last_activity_at FROM telegram_groups WHERE chat_id = %s", (CHAT,)
        ).fetchone()
    assert group == (TRUE_DATES[2],)

    third = await _import(event_log, path, tz=HELSINKI)
    assert (third.imported, third.already_present) == (0, 3)
    guessed_again = await _import(event_log, path)  # a routine re-import without --tz
    assert (guessed_again.imported, guessed_again.dates_kept) == (0, 3)
    assert (await event_log.info()).last_seq == last

    live = {t: table_rows(migrated_url, t) for t in ("messages", "telegram_groups")}
    await rebuild_postgres(log_=event_log, database_url=migrated_url)
    assert {t: table_rows(migrated_url, t) for t in ("messages", "telegram_groups")} == live
    replay = tmp_path / "replay.duckdb"
    await run_to_end(event_log, replay, batch_size=100_000)
    with duckdb.connect(str(replay), read_only=True) as con:
        assert _duck(con) == expected


async def test_a_duckdb_file_from_before_date_ranks_is_ranked_and_corrected(
    event_log: EventLog, tmp_path: Path
) -> None:
    path = write(tmp_path / "result.json", single_chat(MESSAGES))
    duck = tmp_path / "old.duckdb"
    await _import(event_log, path)
    await run_to_end(event_log, duck)
    with duckdb.connect(str(duck)) as con:  # the shape an older release left behind
        con.execute("ALTER TABLE events DROP COLUMN date_rank")
        con.execute("ALTER TABLE messages DROP COLUMN date_rank")
    await _import(event_log, path, tz=HELSINKI)
    await run_to_end(event_log, duck)
    with duckdb.connect(str(duck), read_only=True) as con:
        ranks = con.execute(
            "SELECT date_rank, count(*) FROM events WHERE kind = 'message.posted' GROUP BY 1 "
            "ORDER BY 1"
        ).fetchall()
        assert ranks == [(0, 3), (1, 3)]  # the old import's, as the upcaster reads them
        assert {m: row[0] for m, row in _duck(con).items()} == TRUE_DATES


async def test_a_log_imported_before_date_readings_is_corrected_by_a_reimport(
    event_log: EventLog, nats_server: NatsServer, migrated_url: str, tmp_path: Path
) -> None:
    """Posts an importer wrote before snapshots said how dates were read (schema version 2, the
    plain id, dates read as UTC) replay as guessed readings, which a re-import with --tz corrects."""
    for raw in MESSAGES:
        mid = int(raw["id"])
        guessed = datetime.fromisoformat(str(raw["date"])).replace(tzinfo=UTC)
        edited = raw.get("edited")
        event = MessagePosted(
            event_id=ids.posted_id(CHAT, mid, account="main"),
            account="main",
            observed_at=datetime(2026, 1, 1, tzinfo=UTC),
            source="import",
            chat_id=CHAT,
            message=MessageSnapshot(
                message_id=mid,
                date=guessed,
                edit_date=None
                if edited is None
                else datetime.fromisoformat(str(edited)).replace(tzinfo=UTC),
                text=str(raw["text"]),
            ),
        )
        body = json.loads(event_log.codec.encode(event))
        body["schema_version"] = 2
        await publish_raw(nats_server.url, f"tg.msg.{CHAT}", json.dumps(body).encode())
    await project_to_end(event_log, migrated_url)
    assert _pg(migrated_url)[1][0] == datetime(2018, 2, 1, 10, 0, tzinfo=UTC)  # as stored then

    path = write(tmp_path / "result.json", single_chat(MESSAGES))
    progress = await _import(event_log, path, tz=HELSINKI)
    assert progress.redated == 3
    await project_to_end(event_log, migrated_url)
    assert {m: row[0] for m, row in _pg(migrated_url).items()} == TRUE_DATES
    assert {m: row[2] for m, row in _pg(migrated_url).items()} == {1: 0, 2: 0, 3: 1}
