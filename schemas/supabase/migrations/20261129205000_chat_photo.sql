-- A chat's current photo (Telegram's photo id), the newest by (time, seq) of the facts that name
-- one (projector/rules.py, rule "chat photo"): a discovery or update (live ingest reads the
-- chat's photo), a photo-change service message (its date; a removal shows none).
ALTER TABLE public.telegram_groups ADD COLUMN IF NOT EXISTS photo_id bigint;
ALTER TABLE public.telegram_groups ADD COLUMN IF NOT EXISTS photo_at timestamptz;
ALTER TABLE public.telegram_groups ADD COLUMN IF NOT EXISTS photo_seq bigint NOT NULL DEFAULT 0;
