"""A rebuild's bulk load (one set-based batch into empty tables) gives the tables the batch-by-batch merge
gives, on real nats-server + Postgres, for every kind of event and every out-of-order case."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from eventlog import EventLog
from projector.rebuild_postgres import rebuild_postgres
from schemas.events import (
    BackfillCompleted,
    BackfillProgressed,
    BackfillStarted,
    ChatDiscovered,
    ChatInfo,
    ChatLeft,
    ChatUpdated,
    Event,
    FloodWaited,
    GapFillCompleted,
    IngestFailed,
    MediaStored,
    MessagePosted,
    MessageSnapshot,
    ReactionCount,
    ReactionsUpdated,
    ServiceAction,
)
from tests.factories import CHAN, deleted, edited
from tests.helpers import posted
from tests.projector.conftest import content_hash, project_to_end

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
BASIC = -4242


def _meta(i: int, chat: int) -> list[Event]:
    """Chat metadata and crawler status events of ``chat`` (seq-ordered rules: newest wins)."""
    at = T0 + timedelta(minutes=i)
    base: dict[str, Any] = {"account": "main", "observed_at": at, "source": "live", "chat_id": chat}
    info = ChatInfo(chat_id=chat, kind="supergroup", title=f"t{i}", member_count=i)
    return [
        ChatDiscovered(event_id=f"d{i}", chat=info, **base),
        ChatUpdated(
            event_id=f"u{i}", chat=ChatInfo(chat_id=chat, kind="supergroup", title=f"u{i}"), **base
        ),
        BackfillStarted(event_id=f"bs{i}", since=T0, estimated_total=100 + i, **base),
        BackfillProgressed(event_id=f"bp{i}", since=T0, fetched=i, last_message_id=i, **base),
        BackfillCompleted(event_id=f"bc{i}", since=T0, fetched=i, **base),
        GapFillCompleted(
            event_id=f"g{i}",
            window_start=T0,
            window_end=at,
            fetched=3,
            new=2,
            edited=1,
            deleted=0,
            **base,
        ),
        FloodWaited(event_id=f"f{i}", seconds=i % 30, method="GetHistory", resume_at=at, **base),
        IngestFailed(event_id=f"e{i}", error=f"boom {i}", **base),
    ]


def workload(seed: int = 11) -> list[Event]:
    """Posts, edits (some before their post), deletes with and without a chat id (some before the post),
    the same post from three sources, older snapshots after newer ones, reactions (some before their
    message), stored media, title changes and chat / crawler status events of several chats."""
    rng = random.Random(seed)
    events: list[Event] = []
    chats = [CHAN, CHAN - 1, CHAN - 2, BASIC]
    for i in range(1, 400):
        chat = rng.choice(chats)
        roll = rng.random()
        if roll < 0.05:
            events.append(edited(chat, i + 3, f"early edit {i}"))  # before its post
        if roll < 0.04:
            events.append(deleted(chat if chat != BASIC else None, i + 2))  # before its post
        events.append(
            posted(
                chat, i, text=f"m{i}", source=rng.choice(["live", "backfill", "gapfill", "import"])
            )
        )
        target = rng.randrange(1, i + 1)
        if roll < 0.25:
            events.append(edited(chat, target, f"e{i}", minutes=rng.randrange(1, 50)))
        if 0.25 <= roll < 0.3:
            events.append(
                posted(chat, target, text=f"dup {target}", source="gapfill")
            )  # older snapshot
        if 0.3 <= roll < 0.38:
            events.append(deleted(chat if chat != BASIC else None, target))
        if 0.38 <= roll < 0.5:
            events.append(
                ReactionsUpdated(
                    event_id=f"r{i}",
                    account="main",
                    observed_at=T0,
                    source="live",
                    chat_id=chat,
                    message_id=rng.randrange(1, i + 5),
                    reactions=(ReactionCount(count=i, emoji="👍"),),
                )
            )
        if 0.5 <= roll < 0.53:
            events.append(
                MediaStored(
                    event_id=f"ms{i}",
                    account="main",
                    observed_at=T0,
                    source="live",
                    chat_id=chat,
                    message_id=target,
                    sha256=f"{i:064x}",
                    size=i,
                    path=f"media/{i}",
                )
            )
        if 0.53 <= roll < 0.55:
            snap = MessageSnapshot(
                message_id=10_000 + i,
                date=T0,
                action=ServiceAction(type="chat_edit_title", title=f"title {i}"),
            )
            events.append(
                MessagePosted(
                    event_id=f"t{i}",
                    account="main",
                    observed_at=T0,
                    source="live",
                    chat_id=chat,
                    message=snap,
                )
            )
        if roll > 0.97:
            events.extend(_meta(i, chat))
        if roll > 0.995:
            events.append(
                ChatLeft(
                    event_id=f"l{i}", account="main", observed_at=T0, source="live", chat_id=chat
                )
            )
    return events


@pytest.mark.parametrize(
    ("seed", "batch_size", "bulk_max"), [(11, 7, 10**6), (12, 1, 10**6), (13, 50, 300)]
)
async def test_bulk_rebuild_equals_the_batch_by_batch_merge(
    event_log: EventLog,
    migrated_url: str,
    caplog: pytest.LogCaptureFixture,
    seed: int,
    batch_size: int,
    bulk_max: int,
) -> None:
    await event_log.append_many(workload(seed))
    await project_to_end(event_log, migrated_url, batch_size=batch_size)
    incremental = content_hash(migrated_url)
    with caplog.at_level("INFO", logger="projector.postgres.bulk"):
        await rebuild_postgres(log_=event_log, database_url=migrated_url, bulk_max_events=bulk_max)
    assert any("folded" in r.getMessage() for r in caplog.records)
    assert (
        content_hash(migrated_url) == incremental
    )  # with a bulk of the first 300 and a batch-by-batch tail too
    with psycopg.connect(migrated_url) as conn:
        kinds = conn.execute(
            "SELECT count(*) FILTER (WHERE is_deleted), count(*) FILTER (WHERE edit_count > 0), "
            "count(*) FILTER (WHERE reactions_seq > 0), count(*) FILTER (WHERE media_path IS NOT NULL) "
            "FROM messages"
        ).fetchone()
        pending = conn.execute(
            "SELECT (SELECT count(*) FROM pending_deletes) + "
            "(SELECT count(*) FROM pending_chat_deletes)"
        ).fetchone()
    assert kinds is not None and all(n > 0 for n in kinds)  # the workload exercised every rule
    assert pending is not None and pending[0] > 0


async def test_a_poison_event_rolls_the_bulk_back_and_the_replay_dead_letters_it(
    event_log: EventLog,
    migrated_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[Event] = [posted(CHAN, i, text=f"m{i}") for i in range(1, 60)]
    events.insert(30, posted(CHAN, 500, text="nul \x00 byte"))  # Postgres text cannot hold NUL
    results = await event_log.append_many(events)
    await project_to_end(event_log, migrated_url, batch_size=10)
    incremental = content_hash(migrated_url)
    with caplog.at_level("INFO", logger="projector.postgres.bulk"):
        await rebuild_postgres(log_=event_log, database_url=migrated_url)
    assert any("rolled back" in r.getMessage() for r in caplog.records)
    assert content_hash(migrated_url) == incremental
    with psycopg.connect(migrated_url) as conn:
        letters = conn.execute(
            "SELECT seq FROM failed_messages WHERE projection = 'postgres'"
        ).fetchall()
        count = conn.execute("SELECT count(*) FROM messages").fetchone()
    assert letters == [(results[30].seq,)]
    assert count == (59,)
