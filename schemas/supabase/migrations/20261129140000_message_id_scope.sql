-- Message identity outside channels includes the account (additive to 20261128000100/0110/
-- 20261129000100).
-- Telegram numbers the messages of basic groups and private chats per account, so the same
-- (chat_id, message_id) seen by two accounts names two different messages. ``id_scope`` is '' for
-- channel and supergroup messages (numbered per chat) and the observing account otherwise; it is
-- part of the key of messages, message_versions and message_edits. Rows projected before this migration get the
-- scope of the account that last wrote them; a rebuild (`aaltohub rebuild postgres`) replays the
-- log into exact rows.

-- projector:ddl:begin
ALTER TABLE public.messages ADD COLUMN IF NOT EXISTS id_scope text NOT NULL DEFAULT '';
ALTER TABLE public.message_versions ADD COLUMN IF NOT EXISTS id_scope text NOT NULL DEFAULT '';
ALTER TABLE public.message_edits ADD COLUMN IF NOT EXISTS id_scope text NOT NULL DEFAULT '';
ALTER TABLE public.messages DROP CONSTRAINT IF EXISTS messages_pkey;
ALTER TABLE public.messages ADD CONSTRAINT messages_pkey PRIMARY KEY (chat_id, id_scope, message_id);
ALTER TABLE public.message_versions DROP CONSTRAINT IF EXISTS message_versions_pkey;
ALTER TABLE public.message_versions ADD CONSTRAINT message_versions_pkey PRIMARY KEY (chat_id, id_scope, message_id, content_hash);
ALTER TABLE public.message_edits DROP CONSTRAINT IF EXISTS message_edits_pkey;
ALTER TABLE public.message_edits ADD CONSTRAINT message_edits_pkey PRIMARY KEY (chat_id, id_scope, message_id, edit_date);
CREATE INDEX IF NOT EXISTS messages_scope_msg_idx ON public.messages (id_scope, message_id) WHERE id_scope <> '';
-- projector:ddl:end

UPDATE public.message_versions v SET id_scope = m.account
FROM public.messages m
WHERE m.chat_id = v.chat_id AND m.message_id = v.message_id AND m.chat_id >= -1000000000000;
UPDATE public.message_edits e SET id_scope = m.account
FROM public.messages m
WHERE m.chat_id = e.chat_id AND m.message_id = e.message_id AND m.chat_id >= -1000000000000;
UPDATE public.messages SET id_scope = account WHERE chat_id >= -1000000000000;
