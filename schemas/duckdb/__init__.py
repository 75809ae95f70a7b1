"""DuckDB analytics: table definitions, the message fold, and the named analytics queries."""
