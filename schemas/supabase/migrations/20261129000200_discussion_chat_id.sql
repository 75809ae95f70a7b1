-- A channel post's linked discussion group (marked id; Telegram's replies.channel_id).
-- Statements between the markers are replayed into a rebuild's schema (projector/postgres/schema.py).

-- projector:ddl:begin
ALTER TABLE public.messages ADD COLUMN IF NOT EXISTS discussion_chat_id bigint;
-- projector:ddl:end
