-- message_versions holds only messages that have had more than one content (additive to
-- 20261128000100 and 20261129140000; docs/decisions/026-versions-only-of-edited-messages.md).
-- Every message used to have a row there, a second copy of its text. Now the messages row keeps
-- its first sighting's content hash, edit date, observation time and media (the text of a message
-- with one content is the row's own text), and the projector writes the original version from
-- them when a second content arrives. The API answers a message without version rows with its one
-- version built from these columns.

ALTER TABLE public.messages ADD COLUMN IF NOT EXISTS content_hash text;
ALTER TABLE public.messages ADD COLUMN IF NOT EXISTS first_edit_date timestamptz;
ALTER TABLE public.messages ADD COLUMN IF NOT EXISTS first_observed_at timestamptz;
ALTER TABLE public.messages ADD COLUMN IF NOT EXISTS first_media jsonb;

-- The first sighting of a message is its version with the lowest seq.
UPDATE public.messages m
SET content_hash = v.content_hash, first_edit_date = v.edit_date,
    first_observed_at = v.observed_at, first_media = v.media
FROM (SELECT DISTINCT ON (chat_id, id_scope, message_id) *
      FROM public.message_versions ORDER BY chat_id, id_scope, message_id, seq) v
WHERE m.chat_id = v.chat_id AND m.id_scope = v.id_scope AND m.message_id = v.message_id
  AND m.content_hash IS NULL;

DELETE FROM public.message_versions v
WHERE NOT EXISTS (SELECT 1 FROM public.message_versions o
                  WHERE o.chat_id = v.chat_id AND o.id_scope = v.id_scope
                    AND o.message_id = v.message_id AND o.content_hash <> v.content_hash);
