"""``aaltohub analytics QUERY_NAME``: run a named analytics query on the published dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from aaltohub.settings import load_settings
from projector.duckdb.dataset import connect_dataset, dataset_dir
from schemas.duckdb.queries import ANALYTICS_QUERIES


def format_table(columns: list[str], rows: list[tuple[object, ...]]) -> str:
    """A plain-text table."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    """Print the query result."""
    if args.query is None or args.query not in ANALYTICS_QUERIES:
        if args.query is not None:
            print(f"unknown query {args.query!r}")
        for q in ANALYTICS_QUERIES.values():
            print(f"{q.name:28} {q.description}")
        return 0 if args.query is None else 1
    settings = load_settings()
    try:
        opened = _open(args.file, settings.duckdb_file)
        if opened is None:
            print("no analytics data yet; run `aaltohub project` (or `aaltohub up`) first")
            return 1
        con, name = opened
        with con:
            cursor = con.execute(
                ANALYTICS_QUERIES[args.query].sql,
                {"chat_id": args.chat, "since": args.since, "until": args.until},
            )
            columns = [d[0] for d in cursor.description or []]
            rows = [tuple(r) for r in cursor.fetchall()]
    except duckdb.Error as e:
        print(f"aaltohub analytics: {e}")
        return 1
    print(format_table(columns, rows))
    print(f"({len(rows)} rows from {name})")
    return 0


def _open(file: Path | None, duckdb_file: Path) -> tuple[duckdb.DuckDBPyConnection, str] | None:
    """The named DuckDB file, else the published dataset of ``duckdb_file``."""
    if file is not None:
        return (duckdb.connect(str(file), read_only=True), file.name) if file.exists() else None
    return connect_dataset(dataset_dir(duckdb_file))
