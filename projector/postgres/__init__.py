"""The Postgres (Supabase) projection: rows, SQL, the incremental merge, the bulk rebuild load
and rebuild schemas."""
