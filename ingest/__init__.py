"""Telegram side: live handlers, backfill, gap-fill, discovery, sessions, import, demo, durable appends."""
