"""The DuckDB analytics projection: rows, the fold, the rebuild helper process and read snapshots."""
