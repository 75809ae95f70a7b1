"""How a rebuild's bulk load spreads chats over its fold partitions."""

from __future__ import annotations

import random

from projector.postgres.bulk_stage import ChatPartitions


def test_a_dominant_chat_does_not_unbalance_the_partitions() -> None:
    # Chat sizes as in bench/replay.py: one chat has a fifth of the rows, the rest a long tail.
    rng = random.Random(3)
    chats = list(range(300))
    weights = [1 / (i + 1) ** 1.1 for i in chats]
    parts = ChatPartitions(2)
    for chat in rng.choices(chats, weights, k=50_000):
        parts.add_row(chat)
    small, large = sorted(parts.rows)
    assert large / small < 1.1


def test_a_chat_keeps_its_partition() -> None:
    parts = ChatPartitions(2)
    first = parts.add_row(-100)
    for _ in range(10):
        parts.add_row(-200)
    assert parts.of(-100) == first
    assert {parts.add_row(-100) for _ in range(5)} == {first}
