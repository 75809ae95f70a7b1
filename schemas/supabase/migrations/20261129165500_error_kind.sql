-- What failed last for a group (backfill, gap-fill, catch-up, discovery, media, live, session), so
-- operators can filter errors without parsing their text.
ALTER TABLE public.crawler_status ADD COLUMN IF NOT EXISTS last_error_kind text;
