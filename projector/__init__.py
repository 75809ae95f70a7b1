"""Projections of the log: Postgres (Supabase) tables, DuckDB analytics and Realtime broadcast."""
