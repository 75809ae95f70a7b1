"""How a rebuild's bulk load spreads chats over its staging helpers and fold partitions."""

from __future__ import annotations

import random

from eventlog import RawRecord
from projector.postgres.bulk_stage import SubjectPartitions


def test_a_dominant_chat_does_not_unbalance_the_partitions() -> None:
    # Chat sizes as in bench/replay.py: one chat has a fifth of the records, the rest a long tail.
    rng = random.Random(3)
    chats = list(range(300))
    weights = [1 / (i + 1) ** 1.1 for i in chats]
    parts = SubjectPartitions(2)
    for chat in rng.choices(chats, weights, k=50_000):
        parts.of(f"tg.msg.-100{chat}")
    small, large = sorted(parts.records)
    assert large / small < 1.1


def test_a_chat_keeps_its_partition() -> None:
    parts = SubjectPartitions(2)
    first = parts.of("tg.msg.-100")
    for _ in range(10):
        parts.of("tg.msg.-200")
    assert {parts.of("tg.msg.-100") for _ in range(5)} == {first}


def test_records_not_about_one_chats_messages_go_to_partition_zero() -> None:
    parts = SubjectPartitions(2)
    for _ in range(10):  # partition 0 is the fuller one, so a new chat would go to 1
        parts.of("tg.msg.-100")
    for subject in ("tg.msg.nochat.main", "tg.chat.-300", "tg.ops.main", "tg.chat.unknown.main"):
        assert parts.of(subject) == 0


def test_a_batch_splits_in_seq_order() -> None:
    parts = SubjectPartitions(2)
    batch = [
        RawRecord(seq, subject, b"")
        for seq, subject in enumerate(
            ["tg.msg.-1", "tg.msg.-2", "tg.chat.-2", "tg.msg.-2", "tg.msg.-1"], start=1
        )
    ]
    assert [[r.seq for r in part] for part in parts.split(batch)] == [[1, 3, 5], [2, 4]]
