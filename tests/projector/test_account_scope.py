"""Message ids outside channels are per account: several accounts whose basic groups and private
chats share message ids project to separate rows, deletes without a chat id hit only their
account's message, and live (small batches) equals replay (bulk rebuild) in Postgres and DuckDB."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import duckdb
import psycopg

from aaltohub.embedded.nats_server import NatsServer
from eventlog import EventLog, Record
from projector.postgres.sql import PgSql
from projector.rebuild_postgres import rebuild_postgres
from schemas import ids
from schemas.events import CountersUpdated, Event, ReactionCount, ReactionsUpdated
from tests.factories import CHAN, T0, deleted, edited
from tests.helpers import posted, publish_raw
from tests.projector.conftest import project_to_end, run_to_end, table_rows

BASIC_A, BASIC_B = -501, -502  # basic groups both accounts are in
PRIVATE = 77  # the private chat with user 77, as each account sees it
ACCOUNTS = ("a", "b", "c")
# telegram_groups.account (which account a chat is credited to) is not about message identity.
_MESSAGE_TABLES = ("messages", "message_versions", "pending_deletes", "pending_chat_deletes")
_KEY_QUERY = (
    "SELECT chat_id, id_scope, message_id, account, text, is_deleted, views, forwards FROM messages "
    "ORDER BY chat_id, id_scope, message_id"
)


def workload(seed: int) -> list[Event]:
    """Posts in a channel (one id space) and in basic groups / private chats numbered per account
    (so the accounts reuse each other's ids), edits, deletes with and without a chat id (some
    before their post), reactions, and the same channel post seen by several accounts."""
    rng = random.Random(seed)
    next_id = dict.fromkeys(ACCOUNTS, 1)
    mine: dict[str, list[tuple[int, int]]] = {a: [] for a in ACCOUNTS}  # (chat, id) per account
    events: list[Event] = []
    for i in range(1, 300):
        account = rng.choice(ACCOUNTS)
        roll = rng.random()
        if roll < 0.3:
            events.append(posted(CHAN, i, text=f"c{i}", account=account))
            if roll < 0.2:  # view/forward counts of an earlier (or this, or a later) channel post
                target = rng.randrange(max(1, i - 20), i + 3)
                events.append(_counters(target, i, account, views_only=roll < 0.1))
            continue
        chat = rng.choice((BASIC_A, BASIC_B, PRIVATE))
        message_id = next_id[account]
        next_id[account] += 1
        if roll < 0.35:  # a delete that arrives before its post, without a chat id
            events.append(deleted(None, message_id, account=account))
        events.append(posted(chat, message_id, text=f"{account}{i}", account=account))
        mine[account].append((chat, message_id))
        old_chat, old_id = rng.choice(mine[account])
        if 0.35 <= roll < 0.55:
            events.append(edited(old_chat, old_id, f"e{i}", minutes=i, account=account))
        elif 0.55 <= roll < 0.65:
            events.append(deleted(None, old_id, account=account))
        elif 0.65 <= roll < 0.72:
            events.append(deleted(old_chat, old_id, account=account))  # resolved by the index
        elif 0.72 <= roll < 0.8:
            reactions = (ReactionCount(count=i, emoji="👍"),)
            events.append(
                ReactionsUpdated(
                    event_id=ids.reactions_id(old_chat, old_id, reactions, account=account),
                    account=account,
                    observed_at=T0 + timedelta(minutes=i),
                    source="live",
                    chat_id=old_chat,
                    message_id=old_id,
                    reactions=reactions,
                )
            )
    return events


def _counters(message_id: int, i: int, account: str, *, views_only: bool) -> CountersUpdated:
    views, forwards = 100 + i, None if views_only else i % 7
    return CountersUpdated(
        event_id=ids.counters_id(
            CHAN, message_id, views=views, forwards=forwards, replies=None, account=account
        ),
        account=account,
        observed_at=T0 + timedelta(minutes=i),
        source="live",
        chat_id=CHAN,
        message_id=message_id,
        views=views,
        forwards=forwards,
    )


def _pg_rows(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(_KEY_QUERY).fetchall()]


def _duck_rows(path: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return [tuple(r) for r in con.execute(_KEY_QUERY).fetchall()]


async def test_same_basic_group_id_of_two_accounts_is_two_messages(
    event_log: EventLog, migrated_url: str, tmp_path: Path
) -> None:
    await event_log.append_many(
        [
            posted(BASIC_A, 5, text="a's fifth", account="a"),
            posted(BASIC_A, 5, text="b's fifth", account="b"),
            deleted(None, 5, account="a"),
        ]
    )
    await project_to_end(event_log, migrated_url, batch_size=1)
    path = tmp_path / "a.duckdb"
    await run_to_end(event_log, path, batch_size=1)
    expected = [
        (BASIC_A, "a", 5, "a", "a's fifth", True, None, None),
        (BASIC_A, "b", 5, "b", "b's fifth", False, None, None),
    ]
    assert _pg_rows(migrated_url) == expected
    assert _duck_rows(path) == expected


async def test_channel_post_seen_by_two_accounts_is_one_message(
    event_log: EventLog, migrated_url: str
) -> None:
    await event_log.append_many(
        [posted(CHAN, 9, text="post", account="a"), posted(CHAN, 9, text="post", account="b")]
    )
    await project_to_end(event_log, migrated_url)
    assert [r[:3] for r in _pg_rows(migrated_url)] == [(CHAN, "", 9)]


async def test_live_equals_replay_with_accounts_sharing_message_ids(
    event_log: EventLog, migrated_url: str, tmp_path: Path
) -> None:
    await event_log.append_many(workload(seed=5))
    await project_to_end(event_log, migrated_url, batch_size=3)
    live = {t: table_rows(migrated_url, t) for t in _MESSAGE_TABLES}
    live_rows = _pg_rows(migrated_url)
    await rebuild_postgres(log_=event_log, database_url=migrated_url)
    assert {t: table_rows(migrated_url, t) for t in _MESSAGE_TABLES} == live
    duck_live, duck_replay = tmp_path / "live.duckdb", tmp_path / "replay.duckdb"
    await run_to_end(event_log, duck_live, batch_size=3)
    await run_to_end(event_log, duck_replay, batch_size=100_000)
    assert _duck_rows(duck_live) == _duck_rows(duck_replay) == live_rows
    scopes = {(chat, scope) for chat, scope, *_ in live_rows}
    assert {(BASIC_A, "a"), (BASIC_A, "b"), (PRIVATE, "c"), (CHAN, "")} <= scopes
    assert any(r[5] for r in live_rows) and not all(r[5] for r in live_rows)
    assert any(r[6] is not None for r in live_rows) and any(r[7] is not None for r in live_rows)
    with duckdb.connect(str(duck_live), read_only=True) as con:
        history = con.execute("SELECT count(*) FROM message_counters_history").fetchone()
    assert history is not None and history[0] > 0


async def test_log_written_before_account_scoped_ids_replays_into_the_new_tables(
    event_log: EventLog, nats_server: NatsServer, migrated_url: str, tmp_path: Path
) -> None:
    """Version-1 records (the old id rule) of two accounts sharing a basic-group message id."""
    old = [
        posted(BASIC_A, 5, text="a's fifth", account="a"),
        posted(BASIC_A, 5, text="b's fifth", account="b"),
        deleted(None, 5, account="b"),
    ]
    for event in old:
        body = json.loads(event_log.codec.encode(event))
        if body["kind"] == "message.posted":
            body.update(schema_version=1, event_id=f"p-old-{body['account']}")
        await publish_raw(
            nats_server.url,
            f"tg.msg.{event.chat_id or 'nochat.' + event.account}",
            json.dumps(body).encode(),
        )
    await project_to_end(event_log, migrated_url)
    path = tmp_path / "old.duckdb"
    await run_to_end(event_log, path)
    expected = [
        (BASIC_A, "a", 5, "a", "a's fifth", False, None, None),
        (BASIC_A, "b", 5, "b", "b's fifth", True, None, None),
    ]
    assert _pg_rows(migrated_url) == _duck_rows(path) == expected
    decoded = [
        r.event.event_id async for batch in event_log.read() for r in batch if isinstance(r, Record)
    ]
    assert decoded[:2] == [e.event_id for e in old[:2]]  # upcast to today's ids


async def test_duckdb_file_from_before_id_scope_is_refolded_on_open(
    event_log: EventLog, tmp_path: Path
) -> None:
    await event_log.append_many([posted(BASIC_A, 5, account="a"), posted(CHAN, 5, account="a")])
    path = tmp_path / "old.duckdb"
    await run_to_end(event_log, path)
    with duckdb.connect(str(path)) as con:  # the shape an older release left behind
        con.execute("ALTER TABLE messages DROP COLUMN id_scope")
    await event_log.append_many([posted(BASIC_A, 6, account="b")])
    await run_to_end(event_log, path)
    assert [r[:3] for r in _duck_rows(path)] == [
        (CHAN, "", 5),
        (BASIC_A, "a", 5),
        (BASIC_A, "b", 6),
    ]


def test_deletes_by_account_are_found_through_the_scope_index(migrated_url: str) -> None:
    # The index on (id_scope, message_id) covers only ids numbered per account (id_scope <> ''):
    # a statement that does not say so cannot use it and reads every message for each delete.
    q = PgSql(schema="public", checkpoint_schema="public")
    with psycopg.connect(migrated_url) as conn:
        for ddl in q.stage_ddl:
            conn.execute(ddl.encode())
        conn.execute("SET enable_seqscan = off")
        for statement in (q.apply_account_deletes, *q.resolve_pending[1:]):
            plan = conn.execute(("EXPLAIN " + statement).encode()).fetchall()
            text = "\n".join(str(r[0]) for r in plan)
            assert "Seq Scan on messages" not in text, text
            assert "messages_scope_msg_idx" in text, text
