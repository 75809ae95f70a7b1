-- A group's messages newest first, a keyset page at a time (the console's group page and
-- GET /groups/{chat_id}/messages):
--   WHERE chat_id = $1 AND (message_id, id_scope) < (cursor) ORDER BY message_id DESC, id_scope DESC
-- The primary key (chat_id, id_scope, message_id) cannot give that order, so every page sorted all
-- messages of the chat: 479 ms for the first page of a 500,000-message chat, 1.6 ms with this index
-- (load 10 on 2 cores). Rebuilds copy indexes from the catalog, so the index survives a replay.
CREATE INDEX IF NOT EXISTS messages_chat_msg_idx ON public.messages (chat_id, message_id, id_scope);
