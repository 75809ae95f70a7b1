"""What the importer knows of a chat's posts with local dates: per message the reading the
projections show (the highest rank, the latest of it), whatever the order the log holds them in."""

from __future__ import annotations

from ingest.export.existing import LocalReadings
from schemas.events import GIVEN_ZONE, GUESSED_ZONE


def _readings(entries: list[tuple[int, int, int]]) -> LocalReadings:
    readings = LocalReadings()
    for message_id, rank, date in entries:
        readings.add(message_id, rank, date)
    readings.settle()
    return readings


IMPORTS = [  # guessed, then a --tz zone, then guessed again (loses), message 3 only in the first
    (1, GUESSED_ZONE, 100),
    (2, GUESSED_ZONE, 200),
    (3, GUESSED_ZONE, 300),
    (1, GIVEN_ZONE, 90),
    (2, GIVEN_ZONE, 190),
    (1, GUESSED_ZONE, 110),
    (2, GIVEN_ZONE, 180),
]
SHOWN = {1: (GIVEN_ZONE, 90), 2: (GIVEN_ZONE, 180), 3: (GUESSED_ZONE, 300), 4: None}


def test_the_best_ranked_latest_reading_is_shown() -> None:
    readings = _readings(IMPORTS)
    assert {m: readings.get(m) for m in SHOWN} == SHOWN


def test_many_runs_out_of_order_merge_into_the_same_answer() -> None:
    # Each reading its own run (ids never increase): more runs than are kept apart.
    noise = [(120 - i, GUESSED_ZONE, i) for i in range(20)]
    readings = _readings(sorted(IMPORTS, key=lambda e: -e[0]) + noise + IMPORTS)
    assert {m: readings.get(m) for m in SHOWN} == SHOWN
    assert readings.get(101) == (GUESSED_ZONE, 19)
