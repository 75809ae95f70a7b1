"""DuckDB analytics: table and view definitions and the named analytics queries."""
