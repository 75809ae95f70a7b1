"""The projection contract: every write path gives the reference fold's tables (projector/rules.py).

One test, parametrised over the write paths (Postgres live at batch sizes 1, 7 and 5,000, the
Postgres rebuild's bulk load alone and followed by batches, DuckDB live and rebuilt), applies
generated event sequences (tests/contract/sequences.py) and compares every table with
``rules.fold``. ``AALTOHUB_CONTRACT_EXAMPLES`` sets the number of sequences per path (default 20;
thousands for a deep run).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, example, given, note, settings
from hypothesis import strategies as st

from aaltohub.embedded.postgres import PostgresServer
from projector import rules
from schemas.codec import Codec
from schemas.events import AnyEvent
from tests.contract.sequences import SCENARIOS, event_sequences, raw_records
from tests.contract.write_paths import (
    DuckDBPath,
    PostgresBatches,
    PostgresBulk,
    PostgresTarget,
    WritePath,
    differences,
)
from tests.helpers import fresh_database

EXAMPLES = int(os.environ.get("AALTOHUB_CONTRACT_EXAMPLES", "20"))
PATHS = (
    "postgres-batch-1",
    "postgres-batch-7",
    "postgres-batch-5000",
    "postgres-bulk",
    "postgres-bulk-then-batches",
    "duckdb-incremental",
    "duckdb-rebuild",
)


@pytest.fixture(scope="module")
def contract_database(postgres_server: PostgresServer, migrated_template: str) -> Iterator[str]:
    """One migrated database for all examples of the module (each path empties it first)."""
    with fresh_database(postgres_server, "contract", template=migrated_template) as url:
        yield url


def write_path(name: str, database_url: str, directory: Path) -> WritePath:
    """The write path called ``name``."""
    codec = Codec()
    target = PostgresTarget(database_url, codec)
    paths: list[WritePath] = [
        PostgresBatches(target, 1),
        PostgresBatches(target, 7),
        PostgresBatches(target, 5000),
        PostgresBulk(target, tail=False),
        PostgresBulk(target, tail=True),
        DuckDBPath(directory, codec, rebuild=False),
        DuckDBPath(directory, codec, rebuild=True),
    ]
    return next(p for p in paths if p.name == name)


@pytest.mark.timeout(max(120, EXAMPLES * 5))  # a deep run takes ~1 s per sequence under load
@pytest.mark.parametrize("name", PATHS)
def test_write_path_gives_the_reference_tables(
    name: str, contract_database: str, tmp_path: Path
) -> None:
    path = write_path(name, contract_database, tmp_path)
    codec = Codec()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
        # The default (CI) profile replays the same sequences every run, so CI never goes red on
        # a case nobody saw locally; a deep run explores new sequences each time.
        derandomize=EXAMPLES <= 100,
        # Shrinking real-server examples is slow; a deep run reports the first failure as found.
        phases=[Phase.explicit, Phase.reuse, Phase.generate]
        if EXAMPLES > 100
        else [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    )
    @given(events=event_sequences(), cut_at=st.integers(min_value=0, max_value=50))
    def check(events: list[AnyEvent], cut_at: int) -> None:
        records = raw_records(codec, events)
        note("\n".join(f"{r.seq}: {e!r}" for r, e in zip(records, events, strict=True)))
        cut = min(cut_at, len(records))
        observed = asyncio.run(path.project(records, cut=cut))
        expected = path.expected(
            rules.fold((r.seq, e) for r, e in zip(records, events, strict=True))
        )
        for table, rows in expected.items():
            assert observed[table] == rows, differences(path.name, table, observed[table], rows)

    for scenario in SCENARIOS.values():
        for cut_at in {1, len(scenario) // 2}:
            check = example(events=scenario, cut_at=cut_at)(check)
    check()
