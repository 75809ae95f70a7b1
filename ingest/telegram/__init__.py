"""The Telegram side of ingest: client, gateway, handlers, conversion, account worker, backfill,
gap-fill, discovery, sessions, entity cache, rate limit, media."""
