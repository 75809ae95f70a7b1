"""Projections of the log: Postgres/Supabase tables, DuckDB analytics, Realtime broadcast."""
