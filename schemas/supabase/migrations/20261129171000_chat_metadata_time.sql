-- Chat metadata takes the newest by Telegram's own time, whatever the order of arrival
-- (docs/decisions/028-chat-metadata-by-telegram-time.md):
--   meta_at, meta_seq     (time, seq) of the discovery/update whose kind, username, member count,
--                         forum flag and account the row shows
--   title_at, title_seq   (time, seq) of the title shown: a discovery/update or a title-change
--                         message (its date)
--   presence_seq          seq of the latest discovery or leave (is_active, left_at follow seq)
-- Rows written before keep their values; a rebuild gives every row its times.
ALTER TABLE public.telegram_groups ADD COLUMN IF NOT EXISTS meta_at timestamptz;
ALTER TABLE public.telegram_groups ADD COLUMN IF NOT EXISTS title_at timestamptz;
ALTER TABLE public.telegram_groups ADD COLUMN IF NOT EXISTS title_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE public.telegram_groups ADD COLUMN IF NOT EXISTS presence_seq bigint NOT NULL DEFAULT 0;
UPDATE public.telegram_groups SET title_seq = meta_seq, presence_seq = meta_seq
WHERE title_seq = 0 AND presence_seq = 0 AND meta_seq > 0;
