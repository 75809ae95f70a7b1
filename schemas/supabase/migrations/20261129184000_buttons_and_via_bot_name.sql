-- A message's reply-markup buttons (rows of {text, url}) and the username of the bot it was sent
-- via: both were in the log's snapshots but not in the table. Rows written before are filled by a
-- rebuild (aaltohub replay --projection postgres).
ALTER TABLE public.messages ADD COLUMN IF NOT EXISTS via_bot_name text;
ALTER TABLE public.messages ADD COLUMN IF NOT EXISTS buttons jsonb;
