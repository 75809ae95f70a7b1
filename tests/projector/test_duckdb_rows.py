"""The DuckDB events table's Arrow columns hold what pyarrow itself would make of the events' values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa

from projector.duckdb.rows import timestamps

TS = pa.timestamp("us", tz="UTC")


def test_aware_timestamps_are_read_as_pyarrow_reads_them() -> None:
    values = [
        datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
        None,
        datetime(2026, 11, 1, 12, 0, 0, 5, tzinfo=UTC),
        datetime(2026, 11, 1, 12, 0, 0, 450_000, tzinfo=UTC),
        datetime(2026, 11, 1, 12, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 11, 1, 0, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ]
    assert timestamps(values).equals(pa.array(values, type=TS))


def test_naive_timestamps_are_utc_as_pyarrow_reads_them() -> None:
    values = [datetime(2026, 11, 1, 12, 0, tzinfo=UTC), datetime(2026, 11, 1, 12, 0), None]
    assert timestamps(values).equals(pa.array(values, type=TS))


def test_a_column_without_values_is_all_null() -> None:
    assert timestamps([None, None]).equals(pa.array([None, None], type=TS))
    assert timestamps([]).equals(pa.array([], type=TS))
